//! Inverted dropout.

use rand::Rng;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::tape::Var;
use crate::tensor::Tensor;

/// Multiplies by a fixed mask whose entries are `0` or `1/(1 − p)`.
struct Dropout<T> {
    mask: Tensor<T>,
}

impl<T: Float> Op<T> for Dropout<T> {
    fn name(&self) -> &str {
        "dropout"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let data = inputs[0]
            .data()
            .iter()
            .zip(self.mask.data())
            .map(|(&x, &m)| x * m)
            .collect();
        Tensor::from_vec(data, inputs[0].shape().clone())
    }

    // ∂L/∂x = mask · ∂L/∂y.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let data = args
            .grad_output
            .data()
            .iter()
            .zip(self.mask.data())
            .map(|(&g, &m)| g * m)
            .collect();
        Ok(vec![Some(Tensor::from_vec(
            data,
            args.inputs[0].shape().clone(),
        )?)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Inverted dropout: while `training`, each element is zeroed with probability `p` and the
    /// others are scaled by `1/(1 − p)`, so the expected value is unchanged. When not training,
    /// the value is returned as it is.
    ///
    /// `y = m ⊙ x` with `m_i = 1/(1 − p)` with probability `1 − p` and `0` otherwise, drawn from
    /// `rng` (one uniform draw per element in row-major order, so a seeded `rng` gives a
    /// reproducible mask). Gradient: `∂L/∂x = m ⊙ ∂L/∂y`. With `p = 1` every element is
    /// dropped and the output is zero.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    /// use rand::{rngs::StdRng, SeedableRng};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.param(Tensor::ones([1000]));
    /// let y = x.dropout(0.25, true, &mut StdRng::seed_from_u64(0))?;
    /// let kept = y.value().data().iter().filter(|&&v| v != 0.0).count();
    /// assert!((700..800).contains(&kept));
    /// assert!(y.value().data().iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    /// let eval = x.dropout(0.25, false, &mut StdRng::seed_from_u64(0))?;
    /// assert_eq!(eval.value().to_vec(), vec![1.0; 1000]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 ≤ p ≤ 1`.
    pub fn dropout(self, p: f64, training: bool, rng: &mut impl Rng) -> Result<Var<'t, T>> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "dropout",
                "p",
                p,
                "the drop probability must lie in [0, 1]",
            ));
        }
        if !training || p == 0.0 {
            return Ok(self);
        }
        let scale = if p < 1.0 {
            T::from_f64(1.0 / (1.0 - p))
        } else {
            T::zero()
        };
        let shape = self.shape();
        let mask = (0..shape.numel())
            .map(|_| {
                if rng.gen::<f64>() < p {
                    T::zero()
                } else {
                    scale
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, shape)?;
        self.tape.apply(Dropout { mask }, &[self])
    }
}
