//! SoftSort (Prillo & Eisenschlos, 2020): `P[i, j] = softmax_j(−d(ŝ_i, s_j) / τ)` with
//! `ŝ = sort(s)`.

use autograd::parallel::{for_each_row, for_each_row2};
use autograd::{BackwardArgs, Op, Result, Tensor, Var};

use crate::distance::Distance;
use crate::error::{
    check_dense_size, check_logit_range, check_scores, inverse_temperature, largest_magnitude,
    overflow_limit,
};
use crate::float::SortFloat;
use crate::gumbel::{perturb, Gumbel};
use crate::kernels::{
    dot, one_hot_rows, sort_permutation, square_shape, sum, sum_blocks, zeroed, ROW_BLOCK,
};
use crate::simd::dispatch;

/// The SoftSort operator and its settings.
///
/// For scores `s` of shape `[..., n]` it returns `P` of shape `[..., n, n]` with
///
/// ```text
/// P[i, j] = exp(−d(ŝ_i, s_j)/τ) / Σ_k exp(−d(ŝ_i, s_k)/τ),   ŝ = sort(s) (descending by default)
/// ```
///
/// **Gradient.** With `G = ∂L/∂P`, the softmax backward gives
/// `w_ij = P_ij (G_ij − Σ_k G_ik P_ik) · (−d′(ŝ_i − s_j)/τ)`, and then
/// `∂L/∂s_j = −Σ_i w_ij` plus `∂L/∂ŝ_i = Σ_j w_ij`, which is added to `∂L/∂s_{σ(i)}` because
/// `ŝ_i = s_{σ(i)}` for the sorting permutation `σ`. This matches autograd through
/// `torch.sort` in the reference PyTorch code.
///
/// The row maximum of the logits is 0, reached at `j = σ(i)`, so the softmax needs no
/// max-subtraction pass and cannot overflow for any finite scores and temperature.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::{Distance, SoftSort};
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
/// let p = SoftSort::new(1e-3).apply(s)?;
/// assert_eq!(p.value().to_vec(), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
/// let squared = SoftSort::new(0.5).distance(Distance::Squared).apply(s)?;
/// assert_eq!(squared.shape().dims(), &[3, 3]);
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SoftSort {
    tau: f64,
    distance: Distance,
    ascending: bool,
    hard: bool,
}

impl SoftSort {
    /// Creates a SoftSort with temperature `tau`, the absolute distance, descending order and
    /// soft output. The temperature is checked by [`SoftSort::apply`].
    pub fn new(tau: f64) -> Self {
        SoftSort {
            tau,
            distance: Distance::Abs,
            ascending: false,
            hard: false,
        }
    }

    /// Sets the distance `d`.
    pub fn distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    /// Sorts in ascending order instead of descending (`ŝ` ascending, ties still by index).
    pub fn ascending(mut self, ascending: bool) -> Self {
        self.ascending = ascending;
        self
    }

    /// Selects the straight-through variant: the forward value is the exact permutation
    /// matrix of the sort, and the backward is the soft gradient above. Its rows are one-hot
    /// at `σ(i)` with ties broken by index, so it is a valid permutation even for tied scores.
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
        let inv_tau = inverse_temperature::<T>("softsort", self.tau)?;
        let values = scores.value();
        let (batch, n) = check_scores("softsort", &values)?;
        check_dense_size("softsort", batch, n)?;
        // |ŝ_i − s_j| ≤ 2 max |s|, and the squared distance is formed before the division.
        let spread = 2.0 * largest_magnitude(values.data());
        let distance = match self.distance {
            Distance::Abs => spread,
            Distance::Squared => spread * spread,
        };
        check_logit_range::<T>("softsort", self.tau, distance, overflow_limit::<T>())?;
        let op = SoftSortOp {
            inv_tau,
            distance: self.distance,
            descending: !self.ascending,
            hard: self.hard,
            perm: Vec::new(),
            soft: None,
        };
        scores.tape().apply(op, &[scores])
    }

    /// Applies the operator to `scores + noise`, where `noise` has shape `[S, ...scores]`;
    /// the result has shape `[S, ..., n, n]`. Use it with [`Gumbel::noise`] or a fixed tensor.
    ///
    /// # Errors
    /// As [`SoftSort::apply`], and [`autograd::Error::Shape`] if `noise` is not `[S, ...scores]`.
    pub fn apply_with_noise<'t, T: SortFloat>(
        &self,
        scores: Var<'t, T>,
        noise: &Tensor<T>,
    ) -> Result<Var<'t, T>> {
        let perturbed = perturb("softsort", scores, noise, 1.0)?;
        self.apply(perturbed)
    }

    /// Applies the operator to `S` Gumbel-perturbed copies `s + g`, `g = −log(−log U)`,
    /// drawn from `gumbel`'s seeded generator: a relaxed sample of the Plackett–Luce
    /// distribution with log-weights `s`. The result has shape `[S, ..., n, n]`.
    ///
    /// # Errors
    /// As [`SoftSort::apply`] and [`Gumbel::noise`].
    pub fn apply_gumbel<'t, T: SortFloat>(
        &self,
        scores: Var<'t, T>,
        gumbel: &Gumbel,
    ) -> Result<Var<'t, T>> {
        let noise = gumbel.noise::<T>("softsort", scores.shape().dims())?;
        self.apply_with_noise(scores, &noise)
    }
}

/// The fused SoftSort node. Residuals: the sort permutations and, in hard mode, the soft `P`.
struct SoftSortOp<T> {
    inv_tau: T,
    distance: Distance,
    descending: bool,
    hard: bool,
    perm: Vec<usize>,
    soft: Option<Tensor<T>>,
}

impl<T: SortFloat> Op<T> for SoftSortOp<T> {
    fn name(&self) -> &str {
        "softsort"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let scores = &inputs[0];
        let (batch, n) = check_scores("softsort", scores)?;
        let s = scores.data();
        self.perm = vec![0; batch * n];
        for (b, perm) in self.perm.chunks_mut(n).enumerate() {
            sort_permutation(&s[b * n..(b + 1) * n], self.descending, perm);
        }

        let mut out = zeroed(batch * n * n);
        let (perm, inv_tau, distance) = (&self.perm, self.inv_tau, self.distance);
        for_each_row(&mut out, n, batch * n * n * 4, |r, row| {
            dispatch(
                #[inline(always)]
                || {
                    softsort_row(
                        distance,
                        inv_tau,
                        &s[(r / n) * n..(r / n + 1) * n],
                        perm[r],
                        row,
                    )
                },
            )
        });

        let shape = square_shape(scores.dims());
        let soft = Tensor::from_vec(out, shape.clone())?;
        if self.hard {
            self.soft = Some(soft);
            Tensor::from_vec(one_hot_rows(&self.perm, n), shape)
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
        let s = scores.data();
        let p_all = self.soft.as_ref().unwrap_or(args.output).data();
        let g_all = args.grad_output.data();
        let blocks = n.div_ceil(ROW_BLOCK);
        let (perm, inv_tau, distance) = (&self.perm, self.inv_tau, self.distance);

        // Per row block: partial column sums −Σ_i w_ij, and the row sums Σ_j w_ij = ∂L/∂ŝ_i.
        let mut columns = vec![T::zero(); batch * blocks * n];
        let mut sorted_grads = vec![T::zero(); batch * blocks * ROW_BLOCK];
        for_each_row2(
            &mut columns,
            n,
            &mut sorted_grads,
            ROW_BLOCK,
            batch * n * n * 4,
            |task, column, sorted_grad| {
                dispatch(
                    #[inline(always)]
                    || {
                        let (b, blk) = (task / blocks, task % blocks);
                        let s_row = &s[b * n..(b + 1) * n];
                        let mut w = vec![T::zero(); n];
                        for i in blk * ROW_BLOCK..((blk + 1) * ROW_BLOCK).min(n) {
                            let offset = (b * n + i) * n;
                            let p = &p_all[offset..offset + n];
                            let g = &g_all[offset..offset + n];
                            let sorted = s_row[perm[b * n + i]];
                            let centre = dot(p, g);
                            let weights = RowWeights {
                                p,
                                g,
                                s: s_row,
                                sorted,
                                centre,
                                inv_tau,
                            };
                            match distance {
                                Distance::Abs => {
                                    weights.write(&mut w, |u| Distance::Abs.derivative(u))
                                }
                                Distance::Squared => {
                                    weights.write(&mut w, |u| Distance::Squared.derivative(u))
                                }
                            }
                            for (c, &wj) in column.iter_mut().zip(&w) {
                                *c -= wj;
                            }
                            sorted_grad[i - blk * ROW_BLOCK] = sum(&w);
                        }
                    },
                )
            },
        );

        let mut grad = sum_blocks(&columns, batch, blocks, n);
        for b in 0..batch {
            for i in 0..n {
                let blk = i / ROW_BLOCK;
                grad[b * n + perm[b * n + i]] +=
                    sorted_grads[(b * blocks + blk) * ROW_BLOCK + i % ROW_BLOCK];
            }
        }
        Ok(vec![Some(Tensor::from_vec(grad, scores.shape().clone())?)])
    }
}

/// Writes row `P[i, :]` for the sorted score `ŝ_i = s[sorted_index]`.
#[inline(always)]
fn softsort_row<T: SortFloat>(
    distance: Distance,
    inv_tau: T,
    s: &[T],
    sorted_index: usize,
    row: &mut [T],
) {
    let sorted = s[sorted_index];
    match distance {
        Distance::Abs => {
            for (p, &x) in row.iter_mut().zip(s) {
                *p = (-Distance::Abs.eval(sorted - x) * inv_tau).fast_exp();
            }
        }
        Distance::Squared => {
            for (p, &x) in row.iter_mut().zip(s) {
                *p = (-Distance::Squared.eval(sorted - x) * inv_tau).fast_exp();
            }
        }
    }
    let scale = T::one() / sum(row);
    for p in row.iter_mut() {
        *p *= scale;
    }
}

/// The inputs of the softmax backward of row `i`.
struct RowWeights<'a, T> {
    p: &'a [T],
    g: &'a [T],
    s: &'a [T],
    sorted: T,
    centre: T,
    inv_tau: T,
}

impl<T: SortFloat> RowWeights<'_, T> {
    /// Writes `w_j = −P_ij (G_ij − Σ_k G_ik P_ik) · d′(ŝ_i − s_j) / τ`.
    #[inline(always)]
    fn write(&self, w: &mut [T], derivative: impl Fn(T) -> T) {
        for (((wj, &pj), &gj), &sj) in w.iter_mut().zip(self.p).zip(self.g).zip(self.s) {
            *wj = -pj * (gj - self.centre) * derivative(self.sorted - sj) * self.inv_tau;
        }
    }
}
