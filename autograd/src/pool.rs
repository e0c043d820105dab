//! 2-D max and average pooling over square windows, without padding.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::op::{BackwardArgs, Op};
use crate::parallel::{for_each_row, for_each_row2};
use crate::tape::Var;
use crate::tensor::Tensor;

/// The sizes of a pooling: input planes of `height × width`, windows of `kernel × kernel`
/// moved by `stride`, giving `out_h × out_w` outputs per plane.
#[derive(Clone, Copy, Debug)]
struct PoolGeometry {
    planes: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    out_h: usize,
    out_w: usize,
}

impl PoolGeometry {
    fn new(op: &str, x: &Tensor<impl Float>, kernel: usize, stride: usize) -> Result<Self> {
        if x.ndim() != 4 {
            return Err(Error::shape(
                op,
                format!("expected an input [N, C, H, W], got {}", x.shape()),
            ));
        }
        if kernel == 0 || stride == 0 {
            return Err(Error::invalid(
                op,
                "(kernel, stride)",
                format!("({kernel}, {stride})"),
                "the kernel and the stride must be at least 1",
            ));
        }
        let d = x.dims();
        if d[2] < kernel || d[3] < kernel {
            return Err(Error::shape(
                op,
                format!(
                    "the {kernel}×{kernel} window is larger than the input planes of shape {}",
                    x.shape()
                ),
            ));
        }
        Ok(PoolGeometry {
            planes: d[0] * d[1],
            height: d[2],
            width: d[3],
            kernel,
            stride,
            out_h: (d[2] - kernel) / stride + 1,
            out_w: (d[3] - kernel) / stride + 1,
        })
    }

    fn plane_len(&self) -> usize {
        self.height * self.width
    }

    fn out_len(&self) -> usize {
        self.out_h * self.out_w
    }

    fn out_shape(&self, x: &Tensor<impl Float>) -> [usize; 4] {
        [x.dims()[0], x.dims()[1], self.out_h, self.out_w]
    }

    /// Calls `f(output index, offset of the window's top-left input, input row length)` for
    /// each window of one plane, in row-major output order.
    fn for_each_window(&self, mut f: impl FnMut(usize, usize)) {
        for oy in 0..self.out_h {
            for ox in 0..self.out_w {
                f(
                    oy * self.out_w + ox,
                    oy * self.stride * self.width + ox * self.stride,
                );
            }
        }
    }
}

/// Max-pools one plane `src` into `out`, recording in `arg` the offset of each window's
/// maximum.
///
/// The first maximum in row-major window order wins ties; a NaN wins over every number so that
/// it propagates. The winner of each comparison is unpredictable on real data, so planes
/// without NaNs avoid branches. One sweep over the output row per window position takes the
/// maxima. A second sweep locates the first element equal to each maximum with integer
/// arithmetic, and the output copies that element.
fn max_pool_plane<T: Float>(g: &PoolGeometry, src: &[T], out: &mut [T], arg: &mut [u32]) {
    if g.kernel == 2 && g.stride == 2 {
        if !max_pool_plane_2x2(g, src, out, arg) {
            max_pool_plane_with_nan(g, src, out, arg);
        }
        return;
    }
    let has_nan = src.iter().fold(false, |seen, v| seen | v.is_nan());
    if has_nan {
        max_pool_plane_with_nan(g, src, out, arg);
        return;
    }
    let span = (g.out_w - 1) * g.stride + 1;
    let mut searching = vec![0u32; g.out_w];
    for oy in 0..g.out_h {
        let top = oy * g.stride * g.width;
        let out_row = &mut out[oy * g.out_w..][..g.out_w];
        let arg_row = &mut arg[oy * g.out_w..][..g.out_w];
        let line = |i: usize, j: usize| {
            let base = top + i * g.width + j;
            src[base..base + span].iter().step_by(g.stride)
        };
        for (o, &v) in out_row.iter_mut().zip(line(0, 0)) {
            *o = v;
        }
        for i in 0..g.kernel {
            for j in (0..g.kernel).skip(usize::from(i == 0)) {
                for (o, &v) in out_row.iter_mut().zip(line(i, j)) {
                    *o = o.max(v);
                }
            }
        }
        // arg = the offset of the window's first element; then, while the maximum has not been
        // met, step to the next element of the window.
        for (ox, a) in arg_row.iter_mut().enumerate() {
            *a = (top + ox * g.stride) as u32;
        }
        searching.fill(1);
        for i in 0..g.kernel {
            for j in 0..g.kernel {
                let step = if j + 1 < g.kernel {
                    1
                } else {
                    g.width + 1 - g.kernel
                } as u32;
                let rows = arg_row
                    .iter_mut()
                    .zip(searching.iter_mut())
                    .zip(out_row.iter());
                for (((a, s), &m), &v) in rows.zip(line(i, j)) {
                    *s &= u32::from(v != m);
                    *a += *s * step;
                }
            }
        }
        for (o, &a) in out_row.iter_mut().zip(arg_row.iter()) {
            *o = src[a as usize];
        }
    }
}

/// [`max_pool_plane`] for 2×2 windows with stride 2, the common case, in a single pass over
/// the plane. Returns false, with `out` and `arg` partly written, if a window contains a NaN,
/// so that the caller redoes the plane with [`max_pool_plane_with_nan`].
///
/// Each window `[a, b; c, d]` keeps `a` and replaces it by `b`, `c`, `d` in turn only where
/// the newcomer is strictly greater, so the first maximum wins ties, 0.0 against −0.0
/// included. Every step is a compare and a select without branches, which the compiler
/// turns into vector code.
fn max_pool_plane_2x2<T: Float>(
    g: &PoolGeometry,
    src: &[T],
    out: &mut [T],
    arg: &mut [u32],
) -> bool {
    let (width, out_w) = (g.width, g.out_w);
    let below = width as u32;
    let mut has_nan = false;
    for oy in 0..g.out_h {
        let top = 2 * oy * width;
        let upper = &src[top..][..2 * out_w];
        let lower = &src[top + width..][..2 * out_w];
        let out_row = &mut out[oy * out_w..][..out_w];
        let arg_row = &mut arg[oy * out_w..][..out_w];
        // Offsets fit in u32: the caller rejects larger planes.
        let corner = top as u32;
        for ox in 0..out_w {
            let (v0, v1) = (upper[2 * ox], upper[2 * ox + 1]);
            let (v2, v3) = (lower[2 * ox], lower[2 * ox + 1]);
            has_nan |= v0.is_nan() | v1.is_nan() | v2.is_nan() | v3.is_nan();
            let (mut best, mut offset) = (v0, 0u32);
            if v1 > best {
                (best, offset) = (v1, 1);
            }
            if v2 > best {
                (best, offset) = (v2, below);
            }
            if v3 > best {
                (best, offset) = (v3, below + 1);
            }
            out_row[ox] = best;
            arg_row[ox] = corner + 2 * ox as u32 + offset;
        }
    }
    !has_nan
}

/// [`max_pool_plane`] for planes holding a NaN, comparing element by element.
fn max_pool_plane_with_nan<T: Float>(g: &PoolGeometry, src: &[T], out: &mut [T], arg: &mut [u32]) {
    for oy in 0..g.out_h {
        for ox in 0..g.out_w {
            let corner = oy * g.stride * g.width + ox * g.stride;
            let (mut best, mut best_value) = (corner, src[corner]);
            for i in 0..g.kernel {
                let row = corner + i * g.width;
                for (j, &v) in src[row..row + g.kernel].iter().enumerate() {
                    if v > best_value || (v.is_nan() && !best_value.is_nan()) {
                        best = row + j;
                        best_value = v;
                    }
                }
            }
            out[oy * g.out_w + ox] = best_value;
            arg[oy * g.out_w + ox] = best as u32;
        }
    }
}

struct MaxPool2d {
    kernel: usize,
    stride: usize,
    geometry: Option<PoolGeometry>,
    /// For each output, the offset inside its input plane of the element it copied.
    argmax: Vec<u32>,
}

impl<T: Float> Op<T> for MaxPool2d {
    fn name(&self) -> &str {
        "max_pool2d"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let g = PoolGeometry::new("max_pool2d", x, self.kernel, self.stride)?;
        if g.plane_len() > u32::MAX as usize {
            return Err(Error::shape(
                "max_pool2d",
                format!("planes of shape {} are too large", x.shape()),
            ));
        }
        let n_out = g.planes * g.out_len();
        let mut out = vec![T::zero(); n_out];
        let mut argmax = vec![0u32; n_out];
        let work = g.planes * g.out_len() * g.kernel * g.kernel;
        for_each_row2(
            &mut out,
            g.out_len().max(1),
            &mut argmax,
            g.out_len().max(1),
            work,
            |plane, out, arg| {
                let src = &x.data()[plane * g.plane_len()..][..g.plane_len()];
                max_pool_plane(&g, src, out, arg);
            },
        );
        self.argmax = argmax;
        self.geometry = Some(g);
        Tensor::from_vec(out, g.out_shape(x))
    }

    // ∂L/∂x[i] = Σ over the windows whose maximum is at i of ∂L/∂y of that window.
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let g = self.geometry.expect("forward ran before backward");
        let grad = args.grad_output.data();
        let mut dx = vec![T::zero(); args.inputs[0].numel()];
        let work = g.planes * (g.plane_len() + g.out_len());
        for_each_row(&mut dx, g.plane_len(), work, |plane, dx| {
            let base = plane * g.out_len();
            for o in 0..g.out_len() {
                dx[self.argmax[base + o] as usize] += grad[base + o];
            }
        });
        Ok(vec![Some(Tensor::from_vec(
            dx,
            args.inputs[0].shape().clone(),
        )?)])
    }
}

struct AvgPool2d {
    kernel: usize,
    stride: usize,
    geometry: Option<PoolGeometry>,
}

impl<T: Float> Op<T> for AvgPool2d {
    fn name(&self) -> &str {
        "avg_pool2d"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x = &inputs[0];
        let g = PoolGeometry::new("avg_pool2d", x, self.kernel, self.stride)?;
        let scale = T::one() / T::from_f64((g.kernel * g.kernel) as f64);
        let mut out = vec![T::zero(); g.planes * g.out_len()];
        let work = g.planes * g.out_len() * g.kernel * g.kernel;
        for_each_row(&mut out, g.out_len().max(1), work, |plane, out| {
            let src = &x.data()[plane * g.plane_len()..][..g.plane_len()];
            g.for_each_window(|o, corner| {
                let mut sum = T::zero();
                for i in 0..g.kernel {
                    let row = corner + i * g.width;
                    sum += src[row..row + g.kernel].iter().copied().sum::<T>();
                }
                out[o] = sum * scale;
            });
        });
        self.geometry = Some(g);
        Tensor::from_vec(out, g.out_shape(x))
    }

    // ∂L/∂x[i] = Σ over the windows containing i of ∂L/∂y / k².
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let g = self.geometry.expect("forward ran before backward");
        let scale = T::one() / T::from_f64((g.kernel * g.kernel) as f64);
        let grad = args.grad_output.data();
        let mut dx = vec![T::zero(); args.inputs[0].numel()];
        let work = g.planes * g.out_len() * g.kernel * g.kernel;
        for_each_row(&mut dx, g.plane_len(), work, |plane, dx| {
            let gy = &grad[plane * g.out_len()..][..g.out_len()];
            g.for_each_window(|o, corner| {
                let share = gy[o] * scale;
                for i in 0..g.kernel {
                    let row = corner + i * g.width;
                    dx[row..row + g.kernel].iter_mut().for_each(|d| *d += share);
                }
            });
        });
        Ok(vec![Some(Tensor::from_vec(
            dx,
            args.inputs[0].shape().clone(),
        )?)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Max pooling of `[N, C, H, W]` over `kernel × kernel` windows moved by `stride`, without
    /// padding: `y[n, c, oy, ox] = max_{i, j < kernel} x[n, c, oy·s + i, ox·s + j]`, of shape
    /// `[N, C, (H − kernel)/s + 1, (W − kernel)/s + 1]` (rounded down).
    ///
    /// Gradient: `∂L/∂y` of each window goes to the position of its maximum; on ties, to the
    /// first maximum in row-major window order. A NaN counts as the maximum, so it propagates.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f32>::new();
    /// let x = tape.param(Tensor::from_vec(vec![1.0, 5.0, 2.0, 0.0], [1, 1, 2, 2])?);
    /// let y = x.max_pool2d(2, 2)?;
    /// assert_eq!(y.value().to_vec(), vec![5.0]);
    /// let grads = tape.backward(y.sum()?)?;
    /// assert_eq!(grads.get(x)?.to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] unless the input is 4-D with planes at least `kernel` long on each
    /// side; [`Error::InvalidArgument`] for a kernel or stride of 0.
    pub fn max_pool2d(self, kernel: usize, stride: usize) -> Result<Var<'t, T>> {
        let op = MaxPool2d {
            kernel,
            stride,
            geometry: None,
            argmax: Vec::new(),
        };
        self.tape.apply(op, &[self])
    }

    /// Average pooling of `[N, C, H, W]` over `kernel × kernel` windows moved by `stride`,
    /// without padding: `y[n, c, oy, ox] = (1/kernel²) Σ_{i, j < kernel} x[n, c, oy·s + i,
    /// ox·s + j]`.
    ///
    /// Gradient: each input receives `∂L/∂y / kernel²` from every window that contains it.
    ///
    /// ```
    /// use autograd::{Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1, 1, 2, 3])?);
    /// assert_eq!(x.avg_pool2d(2, 1)?.value().to_vec(), vec![3.0, 4.0]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Var::max_pool2d`].
    pub fn avg_pool2d(self, kernel: usize, stride: usize) -> Result<Var<'t, T>> {
        let op = AvgPool2d {
            kernel,
            stride,
            geometry: None,
        };
        self.tape.apply(op, &[self])
    }
}
