//! Softmax and log-softmax along one axis, fused and shifted by the maximum so that no
//! exponential overflows.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::for_each_row;
use crate::tape::Var;
use crate::tensor::Tensor;

/// Scalar operations per element of a softmax row, an estimate used to decide when to go
/// parallel (one max, one exp, one sum, one division).
const WORK_PER_ELEMENT: usize = 4;

/// Softmax (`log == false`) or log-softmax (`log == true`) along `axis`.
struct Softmax {
    axis: isize,
    log: bool,
    /// The resolved axis, set by `forward`.
    resolved: usize,
}

impl Softmax {
    fn op_name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
}

/// Splits a tensor around `axis` into `outer` blocks of `len × inner` elements: the softmax of
/// block `o` at inner position `j` runs over the elements `o·len·inner + k·inner + j`, `k < len`.
///
/// Kernels below run on one block at a time, so blocks are the unit of parallel work and every
/// element is computed by the same sequential arithmetic for any thread count.
fn blocks(x: &Tensor<impl Float>, axis: usize) -> (usize, usize) {
    let (_, len, inner) = x.shape().split_at_axis(axis);
    (len, inner)
}

/// Computes softmax (or log-softmax) of one `len × inner` block into `out`.
fn forward_block<T: Float>(x: &[T], out: &mut [T], len: usize, inner: usize, log: bool) {
    if inner == 1 {
        forward_row(x, out, log);
        return;
    }
    let mut max = vec![T::neg_infinity(); inner];
    for k in 0..len {
        for (m, &v) in max.iter_mut().zip(&x[k * inner..(k + 1) * inner]) {
            if v > *m {
                *m = v;
            }
        }
    }
    // After the shift every exponent is at most exp(0) = 1, so the sum lies in [1, len]: it
    // cannot overflow, and dividing by it or taking its log is safe.
    let mut sum = vec![T::zero(); inner];
    for k in 0..len {
        let row = k * inner..(k + 1) * inner;
        for (((o, &v), &m), s) in out[row.clone()]
            .iter_mut()
            .zip(&x[row])
            .zip(&max)
            .zip(sum.iter_mut())
        {
            let e = (v - m).exp();
            *o = e;
            *s += e;
        }
    }
    if log {
        // log softmax = (x - max) - ln Σ exp(x - max): no exp is taken of a large number.
        let log_sum: Vec<T> = sum.iter().map(|s| s.ln()).collect();
        for k in 0..len {
            let row = k * inner..(k + 1) * inner;
            for (((o, &v), &m), &ls) in out[row.clone()]
                .iter_mut()
                .zip(&x[row])
                .zip(&max)
                .zip(&log_sum)
            {
                *o = (v - m) - ls;
            }
        }
    } else {
        for k in 0..len {
            for (o, &s) in out[k * inner..(k + 1) * inner].iter_mut().zip(&sum) {
                *o /= s;
            }
        }
    }
}

/// [`forward_block`] for a contiguous row (`inner == 1`), the common case of the last axis.
fn forward_row<T: Float>(x: &[T], out: &mut [T], log: bool) {
    let max = x
        .iter()
        .fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    let mut sum = T::zero();
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - max).exp();
        sum += *o;
    }
    if log {
        let log_sum = sum.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v - max) - log_sum;
        }
    } else {
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
}

/// Computes the softmax (or log-softmax) gradient of one block from the output `y` and the
/// output gradient `g` into `out`.
///
/// softmax: `g_x = y ⊙ (g − Σ g⊙y)`; log-softmax: `g_x = g − exp(y) ⊙ Σ g`.
fn backward_block<T: Float>(y: &[T], g: &[T], out: &mut [T], len: usize, inner: usize, log: bool) {
    let mut dot = vec![T::zero(); inner];
    for k in 0..len {
        let row = k * inner..(k + 1) * inner;
        for ((d, &yv), &gv) in dot.iter_mut().zip(&y[row.clone()]).zip(&g[row]) {
            *d += if log { gv } else { gv * yv };
        }
    }
    for k in 0..len {
        let row = k * inner..(k + 1) * inner;
        for (((o, &yv), &gv), &d) in out[row.clone()]
            .iter_mut()
            .zip(&y[row.clone()])
            .zip(&g[row])
            .zip(&dot)
        {
            *o = if log {
                gv - yv.exp() * d
            } else {
                yv * (gv - d)
            };
        }
    }
}

impl<T: Float> Op<T> for Softmax {
    fn name(&self) -> &str {
        self.op_name()
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let name = self.op_name();
        self.resolved = x.shape().axis(name, self.axis)?;
        if let Some(i) = x.first_non_finite() {
            return Err(Error::invalid(
                name,
                "input",
                x.data()[i],
                format!(
                    "element {i} is not finite; softmax needs finite logits (mask with a large negative finite value instead of -inf)"
                ),
            ));
        }
        let (len, inner) = blocks(x, self.resolved);
        let block = len * inner;
        let mut out = vec![T::zero(); x.numel()];
        if block > 0 {
            let data = x.data();
            let log = self.log;
            for_each_row(&mut out, block, x.numel() * WORK_PER_ELEMENT, |o, out| {
                forward_block(&data[o * block..(o + 1) * block], out, len, inner, log);
            });
        }
        Tensor::from_vec(out, x.shape().clone())
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let (y, g) = (args.output, args.grad_output);
        let (len, inner) = blocks(y, self.resolved);
        let block = len * inner;
        let mut out = vec![T::zero(); y.numel()];
        if block > 0 {
            let (yd, gd) = (y.data(), g.data());
            let log = self.log;
            for_each_row(&mut out, block, y.numel() * WORK_PER_ELEMENT, |o, out| {
                let range = o * block..(o + 1) * block;
                backward_block(&yd[range.clone()], &gd[range], out, len, inner, log);
            });
        }
        Ok(vec![Some(Tensor::from_vec(out, y.shape().clone())?)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Softmax along `axis` (negative counts from the end):
    /// `yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m)` with `m = maxⱼ xⱼ`, which equals `exp(xᵢ) / Σⱼ exp(xⱼ)`
    /// but never overflows, so logits of any finite magnitude (±1e4 in `f32` included) give
    /// finite outputs.
    ///
    /// Derivative: `∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ)`, so the gradient is `g_x = y ⊙ (g − Σ g⊙y)` with
    /// the sum along `axis`. Rows run in parallel above a size threshold, with bit-identical
    /// results for any thread count.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.param(Tensor::from_vec(vec![0.0, 2.0_f64.ln(), -1e4, 1e4], [2, 2])?);
    /// let y = x.softmax(-1)?.value();
    /// let expected = [1.0 / 3.0, 2.0 / 3.0, 0.0, 1.0];
    /// for (y, e) in y.data().iter().zip(expected) {
    ///     assert!((y - e).abs() < 1e-15);
    /// }
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is out of range or an element is NaN or infinite.
    pub fn softmax(self, axis: isize) -> Result<Var<'t, T>> {
        let op = Softmax {
            axis,
            log: false,
            resolved: 0,
        };
        self.tape.apply(op, &[self])
    }

    /// Log-softmax along `axis`: `yᵢ = (xᵢ − m) − ln Σⱼ exp(xⱼ − m)` with `m = maxⱼ xⱼ`,
    /// which equals `ln softmax(x)ᵢ` without forming the softmax, so it stays finite where the
    /// softmax underflows to 0. The one exception is a row whose spread `m − xᵢ` exceeds the
    /// largest finite value of `T` (about 3.4e38 in `f32`): there the output is `-inf`.
    ///
    /// Derivative: `∂yᵢ/∂xⱼ = δᵢⱼ − softmax(x)ⱼ`, so the gradient is
    /// `g_x = g − softmax(x) ⊙ Σ g` with the sum along `axis` and `softmax(x) = exp(y)`.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.param(Tensor::from_vec(vec![-1e4, 0.0, 1e4], [3])?);
    /// let y = x.log_softmax(0)?;
    /// assert_eq!(y.value().to_vec(), vec![-2e4, -1e4, 0.0]);
    /// let grads = tape.backward(y.sum()?)?;
    /// // Σ g = 3 and softmax(x) = [0, 0, 1]: g_x = 1 − 3·softmax(x).
    /// assert_eq!(grads.get(x)?.to_vec(), vec![1.0, 1.0, -2.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `axis` is out of range or an element is NaN or infinite.
    pub fn log_softmax(self, axis: isize) -> Result<Var<'t, T>> {
        let op = Softmax {
            axis,
            log: true,
            resolved: 0,
        };
        self.tape.apply(op, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    fn softmax_rows_sum_to_one_on_every_axis() {
        let data: Vec<f64> = (0..24).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        let x = Tensor::from_vec(data, [2, 3, 4]).unwrap();
        let tape = Tape::new();
        let v = tape.constant(x);
        for axis in [0, 1, 2, -1] {
            let sums = v.softmax(axis).unwrap().sum_axes(&[axis], false).unwrap();
            for s in sums.value().to_vec() {
                assert!((s - 1.0).abs() < 1e-12, "axis {axis}: row sums to {s}");
            }
        }
    }

    #[test]
    fn log_softmax_is_log_of_softmax() {
        let data: Vec<f64> = (0..12).map(|i| (i as f64 * 1.3).cos() * 5.0).collect();
        let x = Tensor::from_vec(data, [3, 4]).unwrap();
        let tape = Tape::new();
        let v = tape.constant(x);
        for axis in [0, 1] {
            let log_y = v.log_softmax(axis).unwrap().value();
            let y = v.softmax(axis).unwrap().value();
            for (a, b) in log_y.data().iter().zip(y.data()) {
                assert!((a - b.ln()).abs() < 1e-12, "axis {axis}: {a} vs ln {b}");
            }
        }
    }

    #[test]
    fn softmax_rejects_non_finite_input() {
        let tape = Tape::<f32>::new();
        let v = tape.constant(Tensor::from_vec(vec![0.0, f32::NAN, 1.0], [3]).unwrap());
        let err = v.softmax(0).unwrap_err().to_string();
        assert!(err.contains("softmax"), "{err}");
        assert!(err.contains("NaN"), "{err}");
        assert!(err.contains("element 1"), "{err}");
        let v = tape.constant(Tensor::from_vec(vec![f32::NEG_INFINITY, 1.0], [2]).unwrap());
        let err = v.log_softmax(0).unwrap_err().to_string();
        assert!(err.contains("log_softmax"), "{err}");
    }

    #[test]
    fn softmax_rejects_bad_axis() {
        let tape = Tape::<f64>::new();
        let v = tape.constant(Tensor::zeros([2, 3]));
        let err = v.softmax(2).unwrap_err().to_string();
        assert!(err.contains("axis = 2"), "{err}");
        let scalar = tape.constant(Tensor::scalar(1.0));
        assert!(scalar.softmax(0).is_err());
    }

    #[test]
    fn log_softmax_spread_beyond_float_range() {
        let tape = Tape::<f32>::new();
        let v = tape.constant(Tensor::from_vec(vec![3e38, -3e38], [2]).unwrap());
        assert_eq!(v.softmax(0).unwrap().value().to_vec(), vec![1.0, 0.0]);
        let log_y = v.log_softmax(0).unwrap().value().to_vec();
        assert_eq!(log_y[0], 0.0);
        assert_eq!(log_y[1], f32::NEG_INFINITY);
    }

    #[test]
    fn softmax_of_empty_tensor_is_empty() {
        let tape = Tape::<f64>::new();
        let v = tape.constant(Tensor::zeros([3, 0]));
        assert_eq!(v.softmax(-1).unwrap().shape().dims(), &[3, 0]);
        assert_eq!(v.log_softmax(0).unwrap().shape().dims(), &[3, 0]);
    }
}
