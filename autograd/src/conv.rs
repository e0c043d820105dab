//! 2-D convolution (cross-correlation, as in every deep-learning library) lowered to GEMM.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::im2col::{im2col, im2row, row2im_add, ConvGeometry};
use crate::op::{BackwardArgs, Op};
use crate::parallel::PARALLEL_THRESHOLD;
use crate::shape::Shape;
use crate::tape::Var;
use crate::tensor::{checked_len, Tensor};

/// The zero padding of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding {
    /// `height` zero rows above and below, `width` zero columns left and right. Each must be
    /// smaller than the kernel length on its axis.
    Explicit {
        /// Rows added at the top and at the bottom.
        height: usize,
        /// Columns added at the left and at the right.
        width: usize,
    },
    /// `(k − 1)/2` zeros on each side for an odd kernel length `k`, so the output has
    /// `ceil(H / stride)` rows and `ceil(W / stride)` columns.
    ///
    /// For stride 1 this is TensorFlow's `"SAME"` and PyTorch's `padding="same"`. For larger
    /// strides the padding stays symmetric, whereas TensorFlow may pad one row or column more
    /// at the bottom or right.
    Same,
    /// No padding (`"VALID"`).
    #[default]
    Valid,
}

impl Padding {
    /// The same number of zeros on every side.
    pub fn uniform(pad: usize) -> Self {
        Padding::Explicit {
            height: pad,
            width: pad,
        }
    }

    /// Resolves to (rows, columns) of padding for a `kernel_h × kernel_w` kernel, and checks
    /// that it is smaller than the kernel on each axis. `op` names the caller in errors.
    pub(crate) fn resolve(
        self,
        op: &str,
        kernel_h: usize,
        kernel_w: usize,
    ) -> Result<(usize, usize)> {
        let (pad_h, pad_w) = match self {
            Padding::Explicit { height, width } => (height, width),
            Padding::Valid => (0, 0),
            Padding::Same => {
                if kernel_h.is_multiple_of(2) || kernel_w.is_multiple_of(2) {
                    return Err(Error::invalid(
                        op,
                        "padding",
                        format!("Same with kernel {kernel_h}×{kernel_w}"),
                        "same padding needs odd kernel lengths; use Padding::Explicit for even kernels",
                    ));
                }
                ((kernel_h - 1) / 2, (kernel_w - 1) / 2)
            }
        };
        if pad_h >= kernel_h || pad_w >= kernel_w {
            return Err(Error::invalid(
                op,
                "padding",
                format!("{pad_h}×{pad_w}"),
                format!(
                    "padding must be smaller than the {kernel_h}×{kernel_w} kernel on each axis; more padding only adds outputs that see no input"
                ),
            ));
        }
        Ok((pad_h, pad_w))
    }
}

/// The maximum number of batch chunks. Chunks are the unit of parallel work, and the weight
/// gradient is summed chunk by chunk in index order, so the chunk length depends on the batch
/// size alone and results do not depend on the number of threads. More chunks share the work
/// more evenly: 60 images, for example, give 30 chunks of 2, where a limit of 16 would give
/// 15 chunks of 4, which two threads split 8 to 7.
const MAX_CHUNKS: usize = 32;

fn chunk_len(batch: usize) -> usize {
    batch.div_ceil(MAX_CHUNKS).max(1)
}

/// Runs `f(scratch, item)` on each item, in parallel when `parallel` is set. `scratch` is a
/// buffer of `scratch_len` elements that `f` may overwrite freely. It holds a whole lowered
/// image, so it is allocated once per worker rather than once per item.
fn run_items<T: Float, I: Send>(
    parallel: bool,
    items: Vec<I>,
    scratch_len: usize,
    f: impl Fn(&mut [T], I) + Sync + Send,
) {
    let scratch = || vec![T::zero(); scratch_len];
    if parallel {
        items
            .into_par_iter()
            .for_each_init(scratch, |buffer, item| f(buffer, item));
    } else {
        let mut buffer = scratch();
        items.into_iter().for_each(|item| f(&mut buffer, item));
    }
}

/// Sums `values` in eight interleaved partial sums that are added together at the end.
/// Independent partial sums let the additions run in vector lanes, where one running sum
/// waits for each addition in turn. The order of the additions depends on the length alone.
fn lane_sum<T: Float>(values: &[T]) -> T {
    const LANES: usize = 8;
    let mut lanes = [T::zero(); LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let mut total = lanes.iter().fold(T::zero(), |total, &lane| total + lane);
    for &v in chunks.remainder() {
        total += v;
    }
    total
}

/// `c = alpha · a · b + beta · c` for row-major `c` (`m × n`) and strided `a` (`m × k`) and `b`
/// (`k × n`), given as (pointer slice, row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn gemm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: (&[T], isize, isize),
    b: (&[T], isize, isize),
    beta: T,
    c: &mut [T],
) {
    debug_assert_eq!(c.len(), m * n);
    debug_assert!(a.0.len() >= m * k && b.0.len() >= k * n);
    // SAFETY: every caller passes `a` and `b` slices holding at least the m·k and k·n elements
    // their strides address (whole matrices laid out densely, possibly transposed), and `c` is
    // a distinct, exclusively borrowed m × n buffer.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::one(),
            a.0.as_ptr(),
            a.1,
            a.2,
            b.0.as_ptr(),
            b.1,
            b.2,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

struct Conv2d {
    stride: usize,
    padding: Padding,
    geometry: Option<ConvGeometry>,
}

impl Conv2d {
    fn check<T: Float>(&self, inputs: &[Tensor<T>]) -> Result<ConvGeometry> {
        let (x, w) = (&inputs[0], &inputs[1]);
        if x.ndim() != 4 || w.ndim() != 4 {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "expected input [N, C, H, W] and weight [O, C, kH, kW], got {} and {}",
                    x.shape(),
                    w.shape()
                ),
            ));
        }
        let (xd, wd) = (x.dims(), w.dims());
        if xd[1] != wd[1] {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "the input has {} channels but the weight {} expects {}",
                    xd[1],
                    w.shape(),
                    wd[1]
                ),
            ));
        }
        if let Some(b) = inputs.get(2) {
            if b.dims() != [wd[0]] {
                return Err(Error::shape(
                    "conv2d",
                    format!("the bias must have shape [{}], got {}", wd[0], b.shape()),
                ));
            }
        }
        if self.stride == 0 {
            return Err(Error::invalid(
                "conv2d",
                "stride",
                0,
                "the stride must be at least 1",
            ));
        }
        if wd[2] == 0 || wd[3] == 0 || wd[0] == 0 || wd[1] == 0 {
            return Err(Error::shape(
                "conv2d",
                format!("the weight {} has an empty axis", w.shape()),
            ));
        }
        let (pad_h, pad_w) = self.padding.resolve("conv2d", wd[2], wd[3])?;
        let (padded_h, padded_w) = (xd[2] + 2 * pad_h, xd[3] + 2 * pad_w);
        if padded_h < wd[2] || padded_w < wd[3] {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "the {}×{} kernel is larger than the padded {padded_h}×{padded_w} input of shape {}",
                    wd[2],
                    wd[3],
                    x.shape()
                ),
            ));
        }
        Ok(ConvGeometry {
            channels: xd[1],
            height: xd[2],
            width: xd[3],
            kernel_h: wd[2],
            kernel_w: wd[3],
            stride: self.stride,
            pad_h,
            pad_w,
            out_h: (padded_h - wd[2]) / self.stride + 1,
            out_w: (padded_w - wd[3]) / self.stride + 1,
        })
    }
}

impl<T: Float> Op<T> for Conv2d {
    fn name(&self) -> &str {
        "conv2d"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let g = self.check(inputs)?;
        self.geometry = Some(g);
        let (x, w) = (&inputs[0], &inputs[1]);
        let (batch, out_channels) = (x.dims()[0], w.dims()[0]);
        let numel = checked_len::<T>(
            "conv2d",
            &Shape::new(&[batch, out_channels, g.out_h, g.out_w]),
        )?;
        let (k, p) = (g.patch_len(), g.out_pixels());
        let mut out = vec![T::zero(); numel];
        let image_out = out_channels * p;
        if out.is_empty() {
            return Tensor::from_vec(out, [batch, out_channels, g.out_h, g.out_w]);
        }

        let bias = inputs.get(2).map(|b| b.data());
        // A copy of the O × K weight in column-major order. matrixmultiply packs its left
        // operand with contiguous copies only in that order, and it packs it for every image.
        // A bias becomes one more column, matched by a row of ones below the patches, so the
        // product adds it without a separate pass over the output.
        let k_total = k + usize::from(bias.is_some());
        let mut w_columns = Vec::with_capacity(k_total * out_channels);
        for column in 0..k {
            w_columns.extend((0..out_channels).map(|o| w.data()[o * k + column]));
        }
        if let Some(b) = bias {
            w_columns.extend_from_slice(b);
        }
        let chunk = chunk_len(batch);
        let parallel = batch > 1 && batch * image_out * k >= PARALLEL_THRESHOLD;
        let items: Vec<(usize, &mut [T])> = out.chunks_mut(chunk * image_out).enumerate().collect();
        run_items(
            parallel,
            items,
            k_total * p,
            |cols, (chunk_index, out_chunk)| {
                cols[k * p..].fill(T::one());
                for (offset, y) in out_chunk.chunks_exact_mut(image_out).enumerate() {
                    let n = chunk_index * chunk + offset;
                    let image = &x.data()[n * g.image_len()..][..g.image_len()];
                    im2col(&g, image, &mut cols[..k * p]);
                    // y = [W | b] · [cols; 1].
                    gemm(
                        out_channels,
                        k_total,
                        p,
                        (&w_columns, 1, out_channels as isize),
                        (cols, p as isize, 1),
                        T::zero(),
                        y,
                    );
                }
            },
        );
        Tensor::from_vec(out, [batch, out_channels, g.out_h, g.out_w])
    }

    // With G_n = ∂L/∂y_n as an O × P matrix per image and rows_n = cols_nᵀ (P × K):
    //   ∂L/∂x_n = row2im(G_nᵀ · W),  ∂L/∂W = Σ_n G_n · rows_n,  ∂L/∂b_o = Σ_n Σ_p G_n[o, p].
    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let g = self.geometry.expect("forward ran before backward");
        let (x, w, grad) = (&args.inputs[0], &args.inputs[1], args.grad_output);
        let has_bias = args.inputs.len() == 3;
        let (batch, out_channels) = (x.dims()[0], w.dims()[0]);
        let (k, p) = (g.patch_len(), g.out_pixels());
        let image_out = out_channels * p;
        let (need_x, need_w) = (args.needs_grad[0], args.needs_grad[1]);
        let need_b = has_bias && args.needs_grad[2];

        let chunk = chunk_len(batch);
        let chunks = batch.div_ceil(chunk);
        let wk = w.numel();
        let mut dx = vec![T::zero(); if need_x { x.numel() } else { 0 }];
        let mut partial_w = vec![T::zero(); if need_w { chunks * wk } else { 0 }];
        let mut partial_b = vec![T::zero(); if need_b { chunks * out_channels } else { 0 }];

        struct Chunk<'a, T> {
            index: usize,
            dx: Option<&'a mut [T]>,
            dw: Option<&'a mut [T]>,
            db: Option<&'a mut [T]>,
        }
        let mut items: Vec<Chunk<T>> = (0..chunks)
            .map(|index| Chunk {
                index,
                dx: None,
                dw: None,
                db: None,
            })
            .collect();
        for (item, s) in items.iter_mut().zip(dx.chunks_mut(chunk * g.image_len())) {
            item.dx = Some(s);
        }
        for (item, s) in items.iter_mut().zip(partial_w.chunks_mut(wk)) {
            item.dw = Some(s);
        }
        for (item, s) in items.iter_mut().zip(partial_b.chunks_mut(out_channels)) {
            item.db = Some(s);
        }

        let parallel = batch > 1 && batch * image_out * k >= PARALLEL_THRESHOLD;
        run_items(parallel, items, k * p, |rows, mut item| {
            let first = item.index * chunk;
            let last = (first + chunk).min(batch);
            for n in first..last {
                let gy = &grad.data()[n * image_out..][..image_out];
                if let Some(dw) = item.dw.as_deref_mut() {
                    let xn = &x.data()[n * g.image_len()..][..g.image_len()];
                    // The patches as rows (P × K), so that the product below reads its right
                    // operand contiguously along the output.
                    im2row(&g, xn, rows);
                    // dW += G_n · rows_n.
                    gemm(
                        out_channels,
                        p,
                        k,
                        (gy, p as isize, 1),
                        (rows, k as isize, 1),
                        T::one(),
                        dw,
                    );
                }
                if let Some(db) = item.db.as_deref_mut() {
                    for (b, row) in db.iter_mut().zip(gy.chunks_exact(p)) {
                        *b += lane_sum(row);
                    }
                }
                if let Some(dx) = item.dx.as_deref_mut() {
                    // drows = G_nᵀ · W (P × K), with G_nᵀ read through swapped strides, then
                    // scattered back onto the image.
                    gemm(
                        p,
                        out_channels,
                        k,
                        (gy, 1, p as isize),
                        (w.data(), k as isize, 1),
                        T::zero(),
                        rows,
                    );
                    let dxn = &mut dx[(n - first) * g.image_len()..][..g.image_len()];
                    row2im_add(&g, rows, dxn);
                }
            }
        });

        let sum_chunks = |partials: Vec<T>, len: usize| -> Vec<T> {
            let mut chunks = partials.chunks_exact(len);
            let mut total = chunks
                .next()
                .map(<[T]>::to_vec)
                .unwrap_or(vec![T::zero(); len]);
            for part in chunks {
                total.iter_mut().zip(part).for_each(|(t, &v)| *t += v);
            }
            total
        };
        let grad_x = need_x
            .then(|| Tensor::from_vec(dx, x.shape().clone()))
            .transpose()?;
        let grad_w = need_w
            .then(|| Tensor::from_vec(sum_chunks(partial_w, wk), w.shape().clone()))
            .transpose()?;
        let mut grads = vec![grad_x, grad_w];
        if has_bias {
            let grad_b = need_b
                .then(|| Tensor::from_vec(sum_chunks(partial_b, out_channels), [out_channels]))
                .transpose()?;
            grads.push(grad_b);
        }
        Ok(grads)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The 2-D convolution of `self` (`[N, C, H, W]`) with `weight` (`[O, C, kH, kW]`) plus an
    /// optional `bias` (`[O]`), in PyTorch's layout and cross-correlation convention:
    ///
    /// `y[n, o, oy, ox] = b[o] + Σ_{c, i, j} W[o, c, i, j] · x̃[n, c, oy·s + i, ox·s + j]`
    ///
    /// where `x̃` is `x` with the zero padding of `padding` around each image and `s` is the
    /// stride. The output is `[N, O, OH, OW]` with `OH = (H + 2pH − kH)/s + 1` (rounded down),
    /// and likewise `OW`.
    ///
    /// Gradients, with `G = ∂L/∂y`:
    /// `∂L/∂W[o, c, i, j] = Σ_{n, oy, ox} G[n, o, oy, ox] · x̃[n, c, oy·s + i, ox·s + j]`,
    /// `∂L/∂b[o] = Σ_{n, oy, ox} G[n, o, oy, ox]`, and `∂L/∂x` is the transposed convolution of
    /// `G` with `W`, restricted to the unpadded image.
    ///
    /// Each image is lowered with im2col to a `(C·kH·kW) × (OH·OW)` matrix and multiplied by
    /// the weight viewed as `O × (C·kH·kW)`. Large batches run in parallel. The weight
    /// gradient is summed over fixed batch chunks in order, so results are bit-identical for
    /// any thread count.
    ///
    /// ```
    /// use autograd::{Padding, Tape, Tensor};
    ///
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::from_vec((1..=9).map(f64::from).collect(), [1, 1, 3, 3])?);
    /// let w = tape.param(Tensor::ones([1, 1, 2, 2]));
    /// let y = x.conv2d(w, None, 1, Padding::Valid)?; // sums of each 2×2 window
    /// assert_eq!(y.value().to_vec(), vec![12.0, 16.0, 24.0, 28.0]);
    /// let same = x.conv2d(tape.param(Tensor::ones([4, 1, 3, 3])), None, 1, Padding::Same)?;
    /// assert_eq!(same.shape().dims(), &[1, 4, 3, 3]);
    /// # Ok::<(), autograd::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] for inputs that are not 4-D, a channel mismatch, a bias of the wrong
    /// length or a kernel larger than the padded input; [`Error::InvalidArgument`] for stride 0,
    /// same padding with an even kernel, or padding not smaller than the kernel on its axis.
    pub fn conv2d(
        self,
        weight: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        stride: usize,
        padding: Padding,
    ) -> Result<Var<'t, T>> {
        let op = Conv2d {
            stride,
            padding,
            geometry: None,
        };
        match bias {
            Some(b) => self.tape.apply(op, &[self, weight, b]),
            None => self.tape.apply(op, &[self, weight]),
        }
    }
}
