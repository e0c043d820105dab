//! Reductions over axes: sum, mean, max and min, and the central sum-to-shape that turns a
//! broadcast gradient back into an input's gradient.

use smallvec::SmallVec;

use crate::elementwise::{broadcast_tensor, broadcast_zip};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::for_each_row;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::Tensor;

/// Reduces one axis with an associative and commutative `f`, starting from `init`, and keeps
/// the axis with length 1. Max and min qualify, but a float sum does not, because its
/// rounding depends on the order.
///
/// The result is the same as that of [`reduce_axis`]. When the axis is the last one, each row
/// is folded with eight interleaved accumulators, which the compiler can vectorise.
fn reduce_axis_reordered<T: Float>(
    x: &Tensor<T>,
    axis: usize,
    init: T,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Tensor<T> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    if inner != 1 || len == 0 {
        return reduce_axis(x, axis, init, f);
    }
    let mut dims: SmallVec<[usize; 6]> = SmallVec::from_slice(x.dims());
    dims[axis] = 1;
    let mut out = vec![init; outer];
    let data = x.data();
    for_each_row(&mut out, 1, x.numel(), |o, row| {
        let values = &data[o * len..(o + 1) * len];
        let mut lanes = [init; 8];
        let chunks = values.chunks_exact(8);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (lane, &v) in lanes.iter_mut().zip(chunk) {
                *lane = f(*lane, v);
            }
        }
        row[0] = lanes.into_iter().chain(rest.iter().copied()).fold(init, &f);
    });
    Tensor::from_vec(out, Shape(dims)).expect("the reduced shape matches the element count")
}

/// Returns the larger of `a` and `b`, a NaN if either is one, and `0.0` over `−0.0`. Ordering
/// the zeros makes it commutative and associative, so [`reduce_axis_reordered`] gives the
/// same bits as a fold in index order.
fn max_of<T: Float>(a: T, b: T) -> T {
    if b > a || b.is_nan() || (b == a && a.is_sign_negative() && b.is_sign_positive()) {
        b
    } else {
        a
    }
}

/// Returns the smaller of `a` and `b`, a NaN if either is one, and `−0.0` under `0.0`.
fn min_of<T: Float>(a: T, b: T) -> T {
    if b < a || b.is_nan() || (b == a && a.is_sign_positive() && b.is_sign_negative()) {
        b
    } else {
        a
    }
}

/// Reduces one axis with `f`, starting from `init`; the axis keeps length 1.
pub fn reduce_axis<T: Float>(
    x: &Tensor<T>,
    axis: usize,
    init: T,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Tensor<T> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let mut dims: SmallVec<[usize; 6]> = SmallVec::from_slice(x.dims());
    dims[axis] = 1;
    let mut out = vec![init; outer * inner];
    let data = x.data();
    if inner > 0 {
        for_each_row(&mut out, inner, x.numel(), |o, row| {
            let base = o * len * inner;
            for k in 0..len {
                let src = &data[base + k * inner..base + (k + 1) * inner];
                for (acc, &v) in row.iter_mut().zip(src) {
                    *acc = f(*acc, v);
                }
            }
        });
    }
    Tensor::from_vec(out, Shape(dims)).expect("the reduced shape matches the element count")
}

/// Sums `grad` down to `target`, the shape of an input that was broadcast to `grad`'s shape.
///
/// This is the one place where broadcasting is undone for every op's gradient.
///
/// # Errors
/// [`Error::Shape`] naming `op` if `target` does not broadcast to `grad`'s shape.
pub fn sum_to_shape<T: Float>(op: &str, grad: &Tensor<T>, target: &Shape) -> Result<Tensor<T>> {
    let extra = grad.ndim().checked_sub(target.ndim());
    let compatible = extra.is_some_and(|extra| {
        target
            .dims()
            .iter()
            .zip(&grad.dims()[extra..])
            .all(|(&t, &g)| t == g || t == 1)
    });
    let Some(extra) = extra.filter(|_| compatible) else {
        return Err(Error::shape(
            op,
            format!(
                "gradient of shape {} cannot be summed to the input shape {target}",
                grad.shape()
            ),
        ));
    };
    let leading: usize = grad.dims()[..extra].iter().product();
    let mut acc = grad.reshape(Shape::new(
        &[&[leading][..], &grad.dims()[extra..]].concat(),
    ))?;
    acc = reduce_axis(&acc, 0, T::zero(), |a, b| a + b);
    for (axis, &t) in target.dims().iter().enumerate() {
        if t == 1 && acc.dims()[axis + 1] != 1 {
            acc = reduce_axis(&acc, axis + 1, T::zero(), |a, b| a + b);
        }
    }
    acc.reshape(target.clone())
}

/// Resolves and deduplicates axes; an empty list means every axis.
fn resolve_axes(op: &str, shape: &Shape, axes: &[isize]) -> Result<SmallVec<[usize; 6]>> {
    if axes.is_empty() {
        return Ok((0..shape.ndim()).collect());
    }
    let mut resolved: SmallVec<[usize; 6]> = SmallVec::new();
    for &axis in axes {
        let a = shape.axis(op, axis)?;
        if resolved.contains(&a) {
            return Err(Error::invalid(
                op,
                "axes",
                format!("{axes:?}"),
                "each axis may appear once",
            ));
        }
        resolved.push(a);
    }
    resolved.sort_unstable();
    Ok(resolved)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReduceKind {
    Sum,
    Mean,
    Max,
    Min,
}

struct Reduce {
    kind: ReduceKind,
    axes: Vec<isize>,
    keepdim: bool,
    /// The output shape with reduced axes kept as length 1, set by `forward`.
    kept_shape: Shape,
}

impl<T: Float> Op<T> for Reduce {
    fn name(&self) -> &str {
        match self.kind {
            ReduceKind::Sum => "sum",
            ReduceKind::Mean => "mean",
            ReduceKind::Max => "max",
            ReduceKind::Min => "min",
        }
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let name = <Self as Op<T>>::name(self).to_string();
        let axes = resolve_axes(&name, x.shape(), &self.axes)?;
        let mut count = 1usize;
        for &axis in &axes {
            count *= x.dims()[axis];
        }
        if count == 0
            && matches!(
                self.kind,
                ReduceKind::Mean | ReduceKind::Max | ReduceKind::Min
            )
        {
            return Err(Error::shape(
                &name,
                format!("cannot reduce an empty axis of shape {}", x.shape()),
            ));
        }

        let mut acc = x.clone();
        for &axis in &axes {
            acc = match self.kind {
                ReduceKind::Sum | ReduceKind::Mean => {
                    reduce_axis(&acc, axis, T::zero(), |a, b| a + b)
                }
                ReduceKind::Max => reduce_axis_reordered(&acc, axis, T::neg_infinity(), max_of),
                ReduceKind::Min => reduce_axis_reordered(&acc, axis, T::infinity(), min_of),
            };
        }
        if self.kind == ReduceKind::Mean {
            let scale = T::from_f64(1.0 / count as f64);
            acc = acc.map(|v| v * scale);
        }
        self.kept_shape = acc.shape().clone();

        if self.keepdim {
            Ok(acc)
        } else {
            let dims: Vec<usize> = (0..x.ndim())
                .filter(|a| !axes.contains(a))
                .map(|a| x.dims()[a])
                .collect();
            acc.reshape(dims)
        }
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let x = &args.inputs[0];
        let name = <Self as Op<T>>::name(self);
        let g = args.grad_output.reshape(self.kept_shape.clone())?;
        let grad = match self.kind {
            ReduceKind::Sum => broadcast_tensor(name, &g, x.shape())?,
            ReduceKind::Mean => {
                let scale = T::from_f64(self.kept_shape.numel() as f64 / x.numel().max(1) as f64);
                broadcast_tensor(name, &g.map(|v| v * scale), x.shape())?
            }
            ReduceKind::Max | ReduceKind::Min => {
                // Ties share the gradient equally, as torch.amax does.
                let extreme = args.output.reshape(self.kept_shape.clone())?;
                let mask =
                    broadcast_zip(
                        name,
                        x,
                        &extreme,
                        |v, e| if v == e { T::one() } else { T::zero() },
                    )?;
                let mut ties = mask.clone();
                for axis in 0..x.ndim() {
                    if self.kept_shape.dims()[axis] == 1 && x.dims()[axis] != 1 {
                        ties = reduce_axis(&ties, axis, T::zero(), |a, b| a + b);
                    }
                }
                let share = broadcast_zip(name, &g, &ties, |g, n| g / n)?;
                broadcast_zip(name, &mask, &share, |m, s| m * s)?
            }
        };
        Ok(vec![Some(grad)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    fn reduce(self, kind: ReduceKind, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        let op = Reduce {
            kind,
            axes: axes.to_vec(),
            keepdim,
            kept_shape: Shape::scalar(),
        };
        self.tape.apply(op, &[self])
    }

    /// Sums every element into a scalar; the gradient is 1 everywhere.
    pub fn sum(self) -> Result<Var<'t, T>> {
        self.reduce(ReduceKind::Sum, &[], false)
    }

    /// Sums over `axes` (negative axes count from the end; empty means all), keeping them as
    /// length-1 axes if `keepdim`.
    pub fn sum_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(ReduceKind::Sum, axes, keepdim)
    }

    /// Averages every element into a scalar; the gradient is `1/numel` everywhere.
    pub fn mean(self) -> Result<Var<'t, T>> {
        self.reduce(ReduceKind::Mean, &[], false)
    }

    /// Averages over `axes`, as [`Var::sum_axes`] sums.
    pub fn mean_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(ReduceKind::Mean, axes, keepdim)
    }

    /// The maximum over `axes`; the gradient goes to the maximal elements, shared equally
    /// among ties.
    pub fn max_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(ReduceKind::Max, axes, keepdim)
    }

    /// The minimum over `axes`; the gradient goes to the minimal elements, shared equally
    /// among ties.
    pub fn min_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(ReduceKind::Min, axes, keepdim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_to_shape_reduces_broadcast_axes() {
        let g = Tensor::<f64>::from_vec((1..=12).map(f64::from).collect(), [2, 3, 2]).unwrap();
        let r = sum_to_shape("test", &g, &Shape::new(&[3, 1])).unwrap();
        assert_eq!(r.dims(), &[3, 1]);
        // Column sums over axis 0 and axis 2: rows (1+2+7+8), (3+4+9+10), (5+6+11+12).
        assert_eq!(r.to_vec(), vec![18.0, 26.0, 34.0]);
    }

    #[test]
    fn sum_to_shape_rejects_incompatible_target() {
        let g = Tensor::<f64>::zeros([2, 3]);
        assert!(sum_to_shape("test", &g, &Shape::new(&[2])).is_err());
    }

    #[test]
    fn last_axis_lanes_match_fold() {
        let mut with_nan: Vec<f64> = (0..3 * 29).map(|i| ((i * 37) % 83) as f64 - 41.0).collect();
        with_nan[29 + 13] = f64::NAN; // row 1 contains a NaN, which must win
        let x = Tensor::from_vec(with_nan.clone(), [3, 29]).unwrap();
        let (max, min) = (max_of::<f64>, min_of::<f64>);
        let got_max = reduce_axis_reordered(&x, 1, f64::NEG_INFINITY, max);
        let got_min = reduce_axis_reordered(&x, 1, f64::INFINITY, min);
        assert_eq!(got_max.dims(), &[3, 1]);
        for (r, row) in with_nan.chunks(29).enumerate() {
            let want_max = row.iter().copied().fold(f64::NEG_INFINITY, max);
            let want_min = row.iter().copied().fold(f64::INFINITY, min);
            assert!(got_max.data()[r].total_cmp(&want_max).is_eq(), "row {r}");
            assert!(got_min.data()[r].total_cmp(&want_min).is_eq(), "row {r}");
        }
        assert!(got_max.data()[1].is_nan());
        assert!(got_min.data()[1].is_nan());
    }

    #[test]
    fn signed_zeros_reduce_alike_in_any_order() {
        // 0.0 sits in lane 1 and −0.0 in lane 0 of the eight-lane fold: the result must not
        // depend on which of the two tied zeros comes first.
        let mut data = vec![-1.0f64; 16];
        data[1] = 0.0;
        data[8] = -0.0;
        let x = Tensor::from_vec(data.clone(), [1, 16]).unwrap();
        let lanes = reduce_axis_reordered(&x, 1, f64::NEG_INFINITY, max_of);
        let sequential = reduce_axis(&x, 1, f64::NEG_INFINITY, max_of);
        assert!(lanes.data()[0].to_bits() == 0.0f64.to_bits());
        assert!(sequential.data()[0].to_bits() == 0.0f64.to_bits());
        let negated: Vec<f64> = data.iter().map(|v| -v).collect();
        let x = Tensor::from_vec(negated, [1, 16]).unwrap();
        let lanes = reduce_axis_reordered(&x, 1, f64::INFINITY, min_of);
        let sequential = reduce_axis(&x, 1, f64::INFINITY, min_of);
        assert!(lanes.data()[0].to_bits() == (-0.0f64).to_bits());
        assert!(sequential.data()[0].to_bits() == (-0.0f64).to_bits());
    }
}
