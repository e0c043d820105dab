//! The 2-D convolution layer.

use rand::Rng;

use crate::conv::Padding;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::nn::{check_layer_parts, Module, Params, WeightLayout};
use crate::tape::Var;
use crate::tensor::Tensor;

/// A 2-D convolution layer over `[N, C, H, W]` images, with PyTorch's parameter layout:
/// weight `[out_channels, in_channels, kH, kW]`, bias `[out_channels]`. See
/// [`Var::conv2d`] for the math.
#[derive(Clone, Debug)]
pub struct Conv2d<T: Float> {
    /// The kernels, `[out_channels, in_channels, kH, kW]`.
    pub weight: Tensor<T>,
    /// The bias, `[out_channels]`, if the layer has one.
    pub bias: Option<Tensor<T>>,
    /// The step between windows, in pixels, along both axes.
    pub stride: usize,
    /// The zero padding around each image.
    pub padding: Padding,
}

impl<T: Float> Conv2d<T> {
    /// Creates a layer with square `kernel × kernel` kernels, initialised as PyTorch's
    /// `nn.Conv2d`: weight and bias drawn from `U(−1/sqrt(fan_in), 1/sqrt(fan_in))` with
    /// `fan_in = in_channels · kernel²`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a channel count, the kernel or the stride is zero, or if the
    /// padding is not smaller than the kernel (or is [`Padding::Same`] with an even kernel).
    /// The same error reports a weight too large to store (see [`Shape::check_size`]) or one
    /// the allocator cannot provide.
    ///
    /// [`Shape::check_size`]: crate::Shape::check_size
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        bias: bool,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if in_channels == 0 || out_channels == 0 || kernel == 0 || stride == 0 {
            return Err(Error::invalid(
                "Conv2d::new",
                "(in_channels, out_channels, kernel, stride)",
                format!("({in_channels}, {out_channels}, {kernel}, {stride})"),
                "every size must be at least 1",
            ));
        }
        padding.resolve("Conv2d::new", kernel, kernel)?;
        let fan_in = in_channels as f64 * kernel as f64 * kernel as f64;
        let bound = T::from_f64(1.0 / fan_in.sqrt());
        let weight = Tensor::uniform(
            [out_channels, in_channels, kernel, kernel],
            -bound,
            bound,
            rng,
        )?;
        let bias = bias
            .then(|| Tensor::uniform([out_channels], -bound, bound, rng))
            .transpose()?;
        Self::from_parts(weight, bias, stride, padding)
    }

    /// Creates a layer from given tensors, such as those of an [`init`](crate::nn::init)
    /// function.
    ///
    /// # Errors
    /// [`Error::Shape`] unless the weight is 4-D with no empty axis and the bias is
    /// `[out_channels]`. [`Error::InvalidArgument`] for stride 0, for a padding not smaller than
    /// the kernel on each axis (or [`Padding::Same`] with an even kernel), and for a weight or
    /// bias containing NaN or ±∞.
    pub fn from_parts(
        weight: Tensor<T>,
        bias: Option<Tensor<T>>,
        stride: usize,
        padding: Padding,
    ) -> Result<Self> {
        let layout = WeightLayout {
            rank: 4,
            axes: "[out, in, kH, kW]",
            out_axis: 0,
            empty_hint: "every channel count and kernel length must be at least 1",
        };
        check_layer_parts("Conv2d::from_parts", &weight, bias.as_ref(), layout)?;
        if stride == 0 {
            return Err(Error::invalid(
                "Conv2d::from_parts",
                "stride",
                0,
                "the stride must be at least 1",
            ));
        }
        padding.resolve("Conv2d::from_parts", weight.dims()[2], weight.dims()[3])?;
        Ok(Conv2d {
            weight,
            bias,
            stride,
            padding,
        })
    }

    /// Convolves `x` with the layer's parameters as recorded in `params` (a view scoped to
    /// this layer, so that it finds `"weight"` and `"bias"`).
    ///
    /// # Errors
    /// As for [`Var::conv2d`], and [`Error::Shape`] if `params` lacks the layer's parameters.
    pub fn forward<'t>(&self, params: &Params<'t, T>, x: Var<'t, T>) -> Result<Var<'t, T>> {
        let bias = match self.bias {
            Some(_) => Some(params.get("bias")?),
            None => None,
        };
        x.conv2d(params.get("weight")?, bias, self.stride, self.padding)
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    fn named_parameters(&self) -> Vec<(String, &Tensor<T>)> {
        let mut all = vec![("weight".to_string(), &self.weight)];
        if let Some(b) = &self.bias {
            all.push(("bias".to_string(), b));
        }
        all
    }

    fn named_parameters_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut all = vec![("weight".to_string(), &mut self.weight)];
        if let Some(b) = &mut self.bias {
            all.push(("bias".to_string(), b));
        }
        all
    }
}
