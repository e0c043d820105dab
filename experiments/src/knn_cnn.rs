//! The convolutional network that embeds 28 × 28 images for the differentiable kNN experiment.
//!
//! Every convolution has valid padding (no padding), stride 1 and a bias:
//!
//! ```text
//! [B, 1, 28, 28] → conv 5×5, 1→20 → ReLU → max-pool 2×2   → [B, 20, 12, 12]
//!                → conv 5×5, 20→50 → ReLU → max-pool 2×2  → [B, 50, 4, 4]
//!                → flatten (50·4·4 = 800) → linear 800→500 → ReLU → [B, 500]
//! ```
//!
//! ```
//! use autograd::{nn::Params, Tape, Tensor};
//! use experiments::knn_cnn::{EmbeddingCnn, EMBEDDING_DIM};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let model = EmbeddingCnn::new(&mut StdRng::seed_from_u64(0))?;
//! let tape = Tape::new();
//! let params = Params::new(&tape, &model);
//! let embeddings = model.forward(&params, tape.constant(Tensor::zeros([3, 1, 28, 28])))?;
//! assert_eq!(embeddings.value().dims(), &[3, EMBEDDING_DIM]);
//! # Ok::<(), autograd::Error>(())
//! ```

use autograd::nn::{self, Conv2d, Linear, Module, Params};
use autograd::{Error, Padding, Result, Tensor, Var};
use rand::Rng;

/// The side of the square input images.
pub use crate::dataset::IMAGE_SIDE;
/// The side of the square convolution kernels.
pub const KERNEL: usize = 5;
/// The channels of the first convolution.
pub const CONV1_CHANNELS: usize = 20;
/// The channels of the second convolution.
pub const CONV2_CHANNELS: usize = 50;
/// The side of the feature maps after the second pooling: `((28 − 4)/2 − 4)/2 = 4`.
pub const FEATURE_SIDE: usize = 4;
/// The length of an embedding, the width of the last layer.
pub const EMBEDDING_DIM: usize = 500;

/// The embedding network: images `[B, 1, 28, 28]` → embeddings `[B, 500]` (see the module
/// documentation for the layers). Parameters are named `conv1.*`, `conv2.*` and `fc.*`.
#[derive(Clone, Debug)]
pub struct EmbeddingCnn {
    /// The first convolution, 1 → 20 channels.
    pub conv1: Conv2d<f32>,
    /// The second convolution, 20 → 50 channels.
    pub conv2: Conv2d<f32>,
    /// The fully connected layer, 800 → 500.
    pub fc: Linear<f32>,
}

impl EmbeddingCnn {
    /// Creates the network with PyTorch's default initialisation of `nn.Conv2d` and
    /// `nn.Linear`: weights and biases uniform in `±1/√fan_in`.
    ///
    /// # Errors
    /// None in practice; the layer constructors reject only zero sizes.
    pub fn new(rng: &mut impl Rng) -> Result<Self> {
        let conv1 = Conv2d::new(1, CONV1_CHANNELS, KERNEL, 1, Padding::uniform(0), true, rng)?;
        let conv2 = Conv2d::new(
            CONV1_CHANNELS,
            CONV2_CHANNELS,
            KERNEL,
            1,
            Padding::uniform(0),
            true,
            rng,
        )?;
        let fc = Linear::new(
            CONV2_CHANNELS * FEATURE_SIDE * FEATURE_SIDE,
            EMBEDDING_DIM,
            true,
            rng,
        )?;
        Ok(EmbeddingCnn { conv1, conv2, fc })
    }

    /// Embeds the images `x` (`[B, 1, 28, 28]`) as recorded in `params`, giving `[B, 500]`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `[B, 1, 28, 28]` with `B ≥ 1`, or if `params` was not
    /// built from this network.
    pub fn forward<'t>(&self, params: &Params<'t, f32>, x: Var<'t, f32>) -> Result<Var<'t, f32>> {
        let dims = x.shape().dims().to_vec();
        if dims.len() != 4 || dims[0] == 0 || dims[1..] != [1, IMAGE_SIDE, IMAGE_SIDE] {
            return Err(Error::shape(
                "EmbeddingCnn::forward",
                format!(
                    "the images must have shape [B, 1, {IMAGE_SIDE}, {IMAGE_SIDE}] with B ≥ 1, \
                     got {dims:?}"
                ),
            ));
        }
        let h = self.conv1.forward(&params.scope("conv1"), x)?.relu()?;
        let h = h.max_pool2d(2, 2)?;
        let h = self.conv2.forward(&params.scope("conv2"), h)?.relu()?;
        let h = h.max_pool2d(2, 2)?.flatten_from(1)?;
        self.fc.forward(&params.scope("fc"), h)?.relu()
    }
}

impl Module<f32> for EmbeddingCnn {
    fn named_parameters(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut all = nn::scoped("conv1", self.conv1.named_parameters());
        all.extend(nn::scoped("conv2", self.conv2.named_parameters()));
        all.extend(nn::scoped("fc", self.fc.named_parameters()));
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut all = nn::scoped("conv1", self.conv1.named_parameters_mut());
        all.extend(nn::scoped("conv2", self.conv2.named_parameters_mut()));
        all.extend(nn::scoped("fc", self.fc.named_parameters_mut()));
        all
    }
}
