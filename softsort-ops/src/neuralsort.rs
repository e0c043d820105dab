//! NeuralSort (Grover et al., 2019): `P[k, i] = softmax_i(((n + 1 − 2k) s_i − A_i)/τ)` with
//! `A_i = Σ_j |s_i − s_j|`.

use std::mem::MaybeUninit;
use std::ops::Range;

use autograd::parallel::{for_each_row, PARALLEL_THRESHOLD};
use autograd::{BackwardArgs, Op, Result, Tensor, Var};
use rayon::prelude::*;

use crate::error::{
    check_dense_size, check_logit_range, check_scores, inverse_temperature, largest_magnitude,
    overflow_limit,
};
use crate::fast::batch::PositionBlocks;
use crate::fast::neuralsort_rows::RowStream;
use crate::float::SortFloat;
use crate::gumbel::{perturb, Gumbel};
use crate::kernels::{
    dot, one_hot_rows, sort_permutation, square_shape, sum, sum_blocks, with_output_capacity,
    ROW_BLOCK,
};
use crate::pairwise::{abs_row_sums, abs_row_sums_vjp};
use crate::simd::dispatch;

/// The NeuralSort operator and its settings.
///
/// For scores `s` of shape `[..., n]` it returns `P` of shape `[..., n, n]` with, for rows
/// `k = 1..n`,
///
/// ```text
/// P[k, i] = softmax_i(((n + 1 − 2k) s_i − A_i) / τ),   A_i = Σ_j |s_i − s_j|
/// ```
///
/// (ascending order negates the coefficient `n + 1 − 2k`). `A` is computed in O(n log n)
/// from a sort and prefix sums, accumulated in `f64`.
///
/// The forward pass forms the logits in `f64` whatever `T` is: they reach `n·|s|/τ`, and in
/// `f32` their rounding error would exceed 1 once `n·|s|/τ ≳ 1e7`. Consecutive rows of logits
/// differ by `−2 s_i/τ`, so each row of exponentials follows from the previous one by one
/// multiplication per entry. Exact restarts every few rows (at most 64) keep anything
/// significant from underflowing (`docs/fast-softsort.md` has the bound). Only `P` is
/// rounded to `T`.
///
/// **Gradient.** With `G = ∂L/∂P` and `w_ki = P_ki (G_ki − Σ_l G_kl P_kl) / τ`:
/// `∂L/∂s_i = Σ_k c_k w_ki + (∂A/∂s)ᵀ a` with `c_k = n + 1 − 2k` and `a_i = −Σ_k w_ki`.
/// The VJP of `A` uses `∂A_i/∂s_i = #{j: s_j < s_i} − #{j: s_j > s_i}` and
/// `∂A_i/∂s_j = −sign(s_i − s_j)`, evaluated in O(n log n) with counts and prefix sums of `a`.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::NeuralSort;
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
/// let p = NeuralSort::new(1e-3).apply(s)?;
/// assert_eq!(p.value().to_vec(), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NeuralSort {
    tau: f64,
    ascending: bool,
    hard: bool,
}

impl NeuralSort {
    /// Creates a NeuralSort with temperature `tau`, descending order and soft output. The
    /// temperature is checked by [`NeuralSort::apply`].
    pub fn new(tau: f64) -> Self {
        NeuralSort {
            tau,
            ascending: false,
            hard: false,
        }
    }

    /// Sorts in ascending order instead of descending.
    pub fn ascending(mut self, ascending: bool) -> Self {
        self.ascending = ascending;
        self
    }

    /// Selects the straight-through variant: the forward value is the exact permutation
    /// matrix of the sort (ties broken by index, so always a valid permutation) and the
    /// backward is the soft gradient.
    pub fn hard(mut self, hard: bool) -> Self {
        self.hard = hard;
        self
    }

    /// Applies the operator to scores `[..., n]`, returning `P` of shape `[..., n, n]`.
    ///
    /// # Errors
    /// [`autograd::Error::InvalidArgument`] for a temperature that is not positive and finite,
    /// non-finite scores, or logits beyond `T`'s range (above `T::MAX / 1024`);
    /// [`autograd::Error::Shape`] for scalar scores, `n = 0`, or more than 2³⁰ entries of `P`.
    pub fn apply<'t, T: SortFloat>(&self, scores: Var<'t, T>) -> Result<Var<'t, T>> {
        let inv_tau = inverse_temperature::<T>("neuralsort", self.tau)?;
        let values = scores.value();
        let (batch, n) = check_scores("neuralsort", &values)?;
        check_dense_size("neuralsort", batch, n)?;
        // |c_k s_i| ≤ (n − 1) max |s| and A_i ≤ 2n max |s|.
        let largest = 3.0 * n as f64 * largest_magnitude(values.data());
        check_logit_range::<T>("neuralsort", self.tau, largest, overflow_limit::<T>())?;
        let op = NeuralSortOp {
            inv_tau,
            descending: !self.ascending,
            hard: self.hard,
            order: Vec::new(),
            soft: None,
        };
        scores.tape().apply(op, &[scores])
    }

    /// Applies the operator to `scores + noise` with `noise` of shape `[S, ...scores]`.
    ///
    /// # Errors
    /// As [`NeuralSort::apply`], and [`autograd::Error::Shape`] for a noise of another shape.
    pub fn apply_with_noise<'t, T: SortFloat>(
        &self,
        scores: Var<'t, T>,
        noise: &Tensor<T>,
    ) -> Result<Var<'t, T>> {
        let perturbed = perturb("neuralsort", scores, noise, 1.0)?;
        self.apply(perturbed)
    }

    /// Applies the operator to `S` Gumbel-perturbed copies of the scores: the relaxed
    /// Plackett–Luce sampler of stochastic NeuralSort, with `s` the log-weights. The result
    /// has shape `[S, ..., n, n]`.
    ///
    /// # Errors
    /// As [`NeuralSort::apply`] and [`Gumbel::noise`].
    pub fn apply_gumbel<'t, T: SortFloat>(
        &self,
        scores: Var<'t, T>,
        gumbel: &Gumbel,
    ) -> Result<Var<'t, T>> {
        let noise = gumbel.noise::<T>("neuralsort", scores.shape().dims())?;
        self.apply_with_noise(scores, &noise)
    }
}

/// Scalar operations per entry of `P` in the forward pass: a multiplication by the row stream's
/// ratio, a sum and a scaling, with an exponential at every restart.
const WORK_PER_ENTRY: usize = 4;

/// The fused NeuralSort node. Residuals: the ascending order of each batch element and, in
/// hard mode, the soft `P`.
struct NeuralSortOp<T> {
    inv_tau: T,
    descending: bool,
    hard: bool,
    order: Vec<usize>,
    soft: Option<Tensor<T>>,
}

impl<T> NeuralSortOp<T> {
    /// The coefficient `c_k = n + 1 − 2k` of row `k` (1-based), written for the 0-based row.
    fn coefficient(&self, n: usize, row: usize) -> f64 {
        let c = n as f64 - 1.0 - 2.0 * row as f64;
        if self.descending {
            c
        } else {
            -c
        }
    }
}

impl<T: SortFloat> Op<T> for NeuralSortOp<T> {
    fn name(&self) -> &str {
        "neuralsort"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let scores = &inputs[0];
        let (batch, n) = check_scores("neuralsort", scores)?;
        let s = scores.data();
        // The logits reach n·|s|/τ, so they are formed in f64 whatever T is (see the type docs).
        let wide: Vec<f64> = s.iter().map(|x| x.as_f64()).collect();
        self.order = vec![0; batch * n];
        let mut row_sums = vec![0.0f64; batch * n];
        for b in 0..batch {
            let span = b * n..(b + 1) * n;
            let order = &mut self.order[span.clone()];
            sort_permutation(&s[span.clone()], false, order);
            abs_row_sums(&wide[span.clone()], order, &mut row_sums[span]);
        }
        let out = stream_rows(&wide, &row_sums, n, self.inv_tau.as_f64(), self.descending);

        let shape = square_shape(scores.dims());
        let soft = Tensor::from_vec(out, shape.clone())?;
        if self.hard {
            self.soft = Some(soft);
            let mut perm = vec![0; batch * n];
            for (b, perm) in perm.chunks_mut(n).enumerate() {
                sort_permutation(&s[b * n..(b + 1) * n], self.descending, perm);
            }
            Tensor::from_vec(one_hot_rows(&perm, n), shape)
        } else {
            Ok(soft)
        }
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        if !args.needs_grad[0] {
            return Ok(vec![None]);
        }
        let scores = &args.inputs[0];
        let n = *scores.dims().last().expect("checked in forward");
        let batch = scores.numel() / n;
        let p_all = self.soft.as_ref().unwrap_or(args.output).data();
        let g_all = args.grad_output.data();
        let blocks = n.div_ceil(ROW_BLOCK);

        // Per row block, partial column sums of c_k w_ki (first n entries) and of −w_ki
        // (the gradient of A, last n entries).
        let mut columns = vec![T::zero(); batch * blocks * 2 * n];
        for_each_row(&mut columns, 2 * n, batch * n * n * 3, |task, column| {
            dispatch(
                #[inline(always)]
                || {
                    let (b, blk) = (task / blocks, task % blocks);
                    let (direct, through_a) = column.split_at_mut(n);
                    let mut w = vec![T::zero(); n];
                    for k in blk * ROW_BLOCK..((blk + 1) * ROW_BLOCK).min(n) {
                        let offset = (b * n + k) * n;
                        let p = &p_all[offset..offset + n];
                        let g = &g_all[offset..offset + n];
                        let centre = dot(p, g);
                        for ((wi, &pi), &gi) in w.iter_mut().zip(p).zip(g) {
                            *wi = pi * (gi - centre) * self.inv_tau;
                        }
                        let c = T::from_f64(self.coefficient(n, k));
                        for ((d, a), &wi) in direct.iter_mut().zip(through_a.iter_mut()).zip(&w) {
                            *d += c * wi;
                            *a -= wi;
                        }
                    }
                },
            )
        });

        let totals = sum_blocks(&columns, batch, blocks, 2 * n);
        let mut grad = vec![T::zero(); batch * n];
        let s = scores.data();
        for b in 0..batch {
            let (direct, through_a) = totals[b * 2 * n..(b + 1) * 2 * n].split_at(n);
            let g_row = &mut grad[b * n..(b + 1) * n];
            g_row.copy_from_slice(direct);
            abs_row_sums_vjp(
                &s[b * n..(b + 1) * n],
                &self.order[b * n..(b + 1) * n],
                through_a,
                g_row,
            );
        }
        Ok(vec![Some(Tensor::from_vec(grad, scores.shape().clone())?)])
    }
}

/// Returns the soft `P` of every batch row (`[batch, n, n]`), from the scores `s` and the row
/// sums `A` in `f64`.
///
/// Rows are computed in blocks of consecutive sorted positions with [`RowStream`]: one
/// multiplication per entry and an exact restart every few positions, instead of an
/// exponential per entry. The blocks depend on `n` alone and each runs sequentially, so the
/// result does not depend on the number of threads. Ascending order uses the descending row
/// `n − 1 − k` for row `k`, because its coefficients are those of the descending order read
/// backwards.
fn stream_rows<T: SortFloat>(
    s: &[f64],
    row_sums: &[f64],
    n: usize,
    inv_tau: f64,
    descending: bool,
) -> Vec<T> {
    let len = s.len() * n;
    let parallel = len.saturating_mul(WORK_PER_ENTRY) >= PARALLEL_THRESHOLD;
    let mut out = with_output_capacity(len);

    // One task per block of positions of each matrix, each with the rows it writes.
    let blocks = PositionBlocks::new(n);
    let count = blocks.count();
    let mut tasks = Vec::with_capacity(s.len() / n * count);
    for (b, matrix) in out.spare_capacity_mut()[..len]
        .chunks_mut(n * n)
        .enumerate()
    {
        let mut rest = matrix;
        for j in 0..count {
            let positions = blocks.range(if descending { j } else { count - 1 - j });
            let (rows, tail) = rest.split_at_mut(positions.len() * n);
            tasks.push((b, positions, rows));
            rest = tail;
        }
    }

    let run = |(b, positions, rows): (usize, Range<usize>, &mut [MaybeUninit<T>])| {
        dispatch(
            #[inline(always)]
            || {
                let span = b * n..(b + 1) * n;
                let mut stream = RowStream::new(&s[span.clone()], &row_sums[span], inv_tau);
                for k in positions.clone() {
                    stream.advance(k);
                    let values = stream.values();
                    let scale = 1.0 / sum(values);
                    let row = if descending {
                        k - positions.start
                    } else {
                        positions.end - 1 - k
                    };
                    for (p, &v) in rows[row * n..(row + 1) * n].iter_mut().zip(values) {
                        p.write(T::from_f64(v * scale));
                    }
                }
            },
        )
    };
    if parallel {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
    // SAFETY: the blocks of sorted positions cover every row of every batch element once, and
    // each row's n entries are written above, so the first `len` elements are initialised.
    unsafe { out.set_len(len) };
    out
}
