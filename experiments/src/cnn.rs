//! The convolutional network that maps each large-MNIST image to one sorting score.
//!
//! The architecture is the one of the NeuralSort and SoftSort experiments (Grover et al. 2019,
//! Prillo & Eisenschlos 2020):
//!
//! ```text
//! [B, 1, 112, 28] → conv 5×5, 1→32, same padding → ReLU → max-pool 2×2   → [B, 32, 56, 14]
//!                 → conv 5×5, 32→64, same padding → ReLU → max-pool 2×2  → [B, 64, 28, 7]
//!                 → flatten (28·7·64 = 12,544) → linear → 64 → ReLU → linear → 1 → [B]
//! ```
//!
//! ```
//! use autograd::{nn::Params, Tape, Tensor};
//! use experiments::cnn::{CnnInit, ScoreCnn};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let model = ScoreCnn::new(8, 4, CnnInit::TruncatedNormal, &mut StdRng::seed_from_u64(0))?;
//! let tape = Tape::new();
//! let params = Params::new(&tape, &model);
//! let scores = model.forward(&params, tape.constant(Tensor::zeros([3, 1, 8, 4])))?;
//! assert_eq!(scores.value().dims(), &[3]);
//! # Ok::<(), experiments::Error>(())
//! ```

use autograd::nn::{self, init, Conv2d, Linear, Module, Params};
use autograd::{Padding, Tape, Tensor, Var};
use rand::Rng;

use crate::error::{Error, Result};

/// The side of the square convolution kernels.
pub const KERNEL: usize = 5;
/// The channels of the first convolution.
pub const CONV1_CHANNELS: usize = 32;
/// The channels of the second convolution.
pub const CONV2_CHANNELS: usize = 64;
/// The width of the hidden fully connected layer.
pub const HIDDEN: usize = 64;

/// The parameter initialisation of [`ScoreCnn::new`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CnnInit {
    /// Weights from a normal distribution with standard deviation 0.1 truncated at two standard
    /// deviations, every bias 0.1: the initialisation of the TensorFlow NeuralSort code.
    #[default]
    TruncatedNormal,
    /// PyTorch's default for `nn.Conv2d` and `nn.Linear`: weights and biases uniform in
    /// `±1/√fan_in`.
    #[value(name = "pytorch-default")]
    #[serde(rename = "pytorch-default", alias = "py-torch-default")]
    PyTorchDefault,
}

/// The score network: images `[B, 1, H, W]` → scores `[B]`, with `H` and `W` divisible by 4.
#[derive(Clone, Debug)]
pub struct ScoreCnn {
    /// The first convolution, 1 → 32 channels.
    pub conv1: Conv2d<f32>,
    /// The second convolution, 32 → 64 channels.
    pub conv2: Conv2d<f32>,
    /// The hidden layer, `(H/4)·(W/4)·64` → 64.
    pub fc1: Linear<f32>,
    /// The output layer, 64 → 1.
    pub fc2: Linear<f32>,
    rows: usize,
    cols: usize,
}

impl ScoreCnn {
    /// Builds the network for `rows × cols` images (112 × 28 for large MNIST).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `rows` and `cols` are positive multiples of 4, since
    /// the two 2×2 poolings must leave a whole number of rows and columns.
    pub fn new(rows: usize, cols: usize, init: CnnInit, rng: &mut impl Rng) -> Result<Self> {
        if rows == 0 || cols == 0 || !rows.is_multiple_of(4) || !cols.is_multiple_of(4) {
            return Err(Error::invalid(
                "ScoreCnn::new",
                "image size",
                format!("{rows} × {cols}"),
                "rows and columns must be positive multiples of 4 (two 2×2 poolings)",
            ));
        }
        let flat = (rows / 4) * (cols / 4) * CONV2_CHANNELS;
        let mut conv1 = Conv2d::new(1, CONV1_CHANNELS, KERNEL, 1, Padding::Same, true, rng)?;
        let mut conv2 = Conv2d::new(
            CONV1_CHANNELS,
            CONV2_CHANNELS,
            KERNEL,
            1,
            Padding::Same,
            true,
            rng,
        )?;
        let mut fc1 = Linear::new(flat, HIDDEN, true, rng)?;
        let mut fc2 = Linear::new(HIDDEN, 1, true, rng)?;
        if init == CnnInit::TruncatedNormal {
            // Conv2d::new and Linear::new draw PyTorch's default; overwrite it here.
            for (weight, bias) in [
                (&mut conv1.weight, &mut conv1.bias),
                (&mut conv2.weight, &mut conv2.bias),
                (&mut fc1.weight, &mut fc1.bias),
                (&mut fc2.weight, &mut fc2.bias),
            ] {
                *weight = init::truncated_normal(weight.shape().clone(), 0.1, rng)?;
                if let Some(bias) = bias {
                    *bias = init::constant(bias.shape().clone(), 0.1);
                }
            }
        }
        Ok(ScoreCnn {
            conv1,
            conv2,
            fc1,
            fc2,
            rows,
            cols,
        })
    }

    /// The image size `(rows, cols)` the network expects.
    pub fn image_size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Computes the scores `[B]` of images `[B, 1, rows, cols]` on the tape of `params`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the images have another shape.
    pub fn forward<'t>(
        &self,
        params: &Params<'t, f32>,
        images: Var<'t, f32>,
    ) -> Result<Var<'t, f32>> {
        let dims = images.shape().dims().to_vec();
        if dims.len() != 4 || dims[1..] != [1, self.rows, self.cols] {
            return Err(Error::invalid(
                "ScoreCnn::forward",
                "image shape",
                format!("{dims:?}"),
                format!("expected [B, 1, {}, {}]", self.rows, self.cols),
            ));
        }
        let batch = dims[0];
        let h = self.conv1.forward(&params.scope("conv1"), images)?;
        let h = h.relu()?.max_pool2d(2, 2)?;
        let h = self.conv2.forward(&params.scope("conv2"), h)?;
        let h = h.relu()?.max_pool2d(2, 2)?.flatten_from(1)?;
        let h = self.fc1.forward(&params.scope("fc1"), h)?.relu()?;
        let scores = self.fc2.forward(&params.scope("fc2"), h)?;
        Ok(scores.reshape([batch])?)
    }

    /// Computes the scores `[B]` of images `[B, 1, rows, cols]` without recording gradients,
    /// for evaluation.
    ///
    /// # Errors
    /// As [`ScoreCnn::forward`].
    pub fn scores(&self, images: &Tensor<f32>) -> Result<Tensor<f32>> {
        let tape = Tape::new();
        let _guard = tape.no_grad();
        let params = Params::new(&tape, self);
        Ok(self
            .forward(&params, tape.constant(images.clone()))?
            .value())
    }
}

impl Module<f32> for ScoreCnn {
    fn named_parameters(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut all = nn::scoped("conv1", self.conv1.named_parameters());
        all.extend(nn::scoped("conv2", self.conv2.named_parameters()));
        all.extend(nn::scoped("fc1", self.fc1.named_parameters()));
        all.extend(nn::scoped("fc2", self.fc2.named_parameters()));
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut all = nn::scoped("conv1", self.conv1.named_parameters_mut());
        all.extend(nn::scoped("conv2", self.conv2.named_parameters_mut()));
        all.extend(nn::scoped("fc1", self.fc1.named_parameters_mut()));
        all.extend(nn::scoped("fc2", self.fc2.named_parameters_mut()));
        all
    }
}
