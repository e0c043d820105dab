//! Gumbel perturbations for the stochastic variants of the operators.

use autograd::{Error, Float, Result, Tensor, Var};
use rand::distributions::{Distribution, Open01};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::error::check_finite;

/// Settings of a Gumbel perturbation: how many samples to draw and the seed of the
/// generator (`rand::rngs::StdRng`), so that a run is reproducible.
///
/// Adding i.i.d. standard Gumbel noise `g = −log(−log U)`, `U ~ Uniform(0, 1)`, to scores
/// `s` and sorting gives an exact sample of the Plackett–Luce distribution whose log-weights
/// are `s`. Relaxing the sort (SoftSort, NeuralSort) or the assignment (Sinkhorn) gives the
/// stochastic operators.
///
/// ```
/// use softsort_ops::Gumbel;
///
/// let noise = Gumbel::new(4, 7).noise::<f64>("example", &[2, 3])?;
/// assert_eq!(noise.dims(), &[4, 2, 3]);
/// assert!(noise.bit_eq(&Gumbel::new(4, 7).noise::<f64>("example", &[2, 3])?));
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gumbel {
    samples: usize,
    seed: u64,
}

impl Gumbel {
    /// Draws `samples` perturbed copies from a generator seeded with `seed`.
    pub fn new(samples: usize, seed: u64) -> Self {
        Gumbel { samples, seed }
    }

    /// Returns the number of samples, the length of the leading sample axis.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Draws standard Gumbel noise of shape `[samples, ...shape]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (reported under `op`) if `samples` is 0, or if the noise
    /// would hold more than 2²⁸ values.
    pub fn noise<T: Float>(&self, op: &str, shape: &[usize]) -> Result<Tensor<T>> {
        if self.samples == 0 {
            return Err(Error::invalid(
                op,
                "samples",
                0,
                "draw at least one Gumbel sample",
            ));
        }
        let mut dims = vec![self.samples];
        dims.extend_from_slice(shape);
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&count| count <= MAX_NOISE)
            .ok_or_else(|| {
                Error::invalid(
                    op,
                    "samples",
                    self.samples,
                    format!(
                        "{} samples of shape {shape:?} exceed {MAX_NOISE} noise values; draw fewer samples",
                        self.samples
                    ),
                )
            })?;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let data = (0..count)
            .map(|_| {
                let u: f64 = Open01.sample(&mut rng);
                T::from_f64(-(-u.ln()).ln())
            })
            .collect();
        Tensor::from_vec(data, dims)
    }
}

/// Upper bound on the values one call to [`Gumbel::noise`] draws (1 GB in `f32`, 2 GB in
/// `f64`), so that a huge sample count gets an error instead of an allocation failure.
const MAX_NOISE: usize = 1 << 28;

/// Returns `x + scale · noise` on the tape, where `noise` has shape `[S, ...x]`; the
/// gradient flows to `x` and is summed over the sample axis.
pub(crate) fn perturb<'t, T: Float>(
    op: &str,
    x: Var<'t, T>,
    noise: &Tensor<T>,
    scale: f64,
) -> Result<Var<'t, T>> {
    let x_shape = x.shape();
    let dims = noise.dims();
    if dims.len() != x_shape.ndim() + 1 || &dims[1..] != x_shape.dims() {
        return Err(Error::shape(
            op,
            format!(
                "noise must have shape [samples, ...{x_shape}] (one leading sample axis), got {}",
                noise.shape()
            ),
        ));
    }
    check_finite(op, "noise", noise)?;
    let scaled = if scale == 1.0 {
        noise.clone()
    } else {
        let factor = T::from_f64(scale);
        noise.map(|g| g * factor)
    };
    x.add(x.tape().constant(scaled))
}
