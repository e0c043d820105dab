//! Sinkhorn normalisation in the log domain (Adams & Zemel, 2011; Mena et al., 2018).

use std::cell::RefCell;
use std::rc::Rc;

use autograd::parallel::for_each_row;
use autograd::{Error, Float, Op, Result, Tensor, Var};

use crate::error::{
    check_logit_range, check_positive, check_square, inverse_temperature, largest_magnitude,
    precision_limit,
};
use crate::float::SortFloat;
use crate::gumbel::{perturb, Gumbel};
use crate::kernels::{max, sum, zeroed};
use crate::simd::dispatch;

/// The outcome of a Sinkhorn run, returned next to the matrix by [`Sinkhorn::apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct SinkhornReport {
    /// The largest number of iterations run for any matrix of the batch (equal to the
    /// configured count unless the tolerance stopped early).
    pub iterations: usize,
    /// The iterations run for each matrix of the batch, in row-major batch order.
    pub iterations_per_matrix: Vec<usize>,
    /// The largest `|row sum − 1|` or `|column sum − 1|` of the returned matrices.
    pub max_marginal_error: f64,
}

/// The Sinkhorn operator and its settings.
///
/// For log-scores `X` of shape `[..., n, n]` it sets `L = X/τ` and runs `iterations` rounds of
/// row normalisation `L ← L − logsumexp_row(L)` followed by column normalisation
/// `L ← L − logsumexp_col(L)`, then returns `P = exp(L)`, which is doubly stochastic up to
/// the reported marginal error. The iterate is kept as `L_ij = X_ij/τ − u_i − v_j`, so a round
/// is `u = logsumexp_j(X/τ − v)`, `v = logsumexp_i(X/τ − u)`; every log-sum-exp subtracts its
/// maximum, so no score or temperature overflows.
///
/// With a tolerance, a matrix stops before the round whose row normalisation would change
/// no row sum by more than the tolerance.
///
/// **Gradient.** The exact reverse of the rounds that ran: the forward stores `u` and `v`
/// after each round (O(iterations · n) memory) and the backward recomputes the iterates from
/// them. For a row step `Y = L − logsumexp_row(L)`, `∂L/∂L = ∂L/∂Y − exp(Y) ⊙ rowsum(∂L/∂Y)`,
/// the column step likewise with column sums, and finally `∂L/∂X = ∂L/∂L₀ / τ`.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::Sinkhorn;
///
/// let tape = Tape::<f64>::new();
/// let x = tape.param(Tensor::from_vec(vec![1.0, 0.2, 0.3, 0.9], [2, 2])?);
/// let (p, report) = Sinkhorn::new(0.5).iterations(50).apply(x)?;
/// assert!(report.max_marginal_error < 1e-9);
/// let row0 = p.value().data()[0] + p.value().data()[1];
/// assert!((row0 - 1.0).abs() < 1e-9);
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Sinkhorn {
    tau: f64,
    iterations: usize,
    tolerance: Option<f64>,
    noise_factor: f64,
}

impl Sinkhorn {
    /// Creates a Sinkhorn operator with temperature `tau`, 20 iterations, no early stop and a
    /// Gumbel noise factor of 1.
    pub fn new(tau: f64) -> Self {
        Sinkhorn {
            tau,
            iterations: 20,
            tolerance: None,
            noise_factor: 1.0,
        }
    }

    /// Sets the number of rounds (row then column normalisation).
    pub fn iterations(mut self, iterations: usize) -> Self {
        self.iterations = iterations;
        self
    }

    /// Stops a matrix early once a round would change its row sums by less than `tolerance`.
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Sets the factor of the Gumbel noise in [`Sinkhorn::apply_gumbel`] and
    /// [`Sinkhorn::apply_with_noise`]: the operator sees `X + factor · g`.
    pub fn noise_factor(mut self, factor: f64) -> Self {
        self.noise_factor = factor;
        self
    }

    fn check<T: SortFloat>(&self) -> Result<T> {
        let inv_tau = inverse_temperature::<T>("sinkhorn", self.tau)?;
        if self.iterations == 0 {
            return Err(Error::invalid(
                "sinkhorn",
                "iterations",
                0,
                "run at least one iteration",
            ));
        }
        if let Some(tolerance) = self.tolerance {
            check_positive("sinkhorn", "tolerance", tolerance)?;
        }
        if !(self.noise_factor.is_finite() && self.noise_factor >= 0.0) {
            return Err(Error::invalid(
                "sinkhorn",
                "noise_factor",
                self.noise_factor,
                "must be finite and non-negative",
            ));
        }
        Ok(inv_tau)
    }

    /// Applies the operator to log-scores `[..., n, n]`, returning `P` of the same shape
    /// and the report of the run.
    ///
    /// # Errors
    /// [`autograd::Error::InvalidArgument`] for a temperature or tolerance that is not positive
    /// and finite, zero iterations, more iterations than the backward pass can keep (2n
    /// values per round and matrix, 2²⁸ in all), non-finite log-scores, or log-scores over τ
    /// beyond what `T` resolves (1/ε², about 7e13 in `f32`); [`autograd::Error::Shape`] if the
    /// last two axes are not equal or are empty.
    pub fn apply<'t, T: SortFloat>(
        &self,
        log_scores: Var<'t, T>,
    ) -> Result<(Var<'t, T>, SinkhornReport)> {
        let inv_tau = self.check::<T>()?;
        let values = log_scores.value();
        let (batch, n) = check_square("sinkhorn", "log_scores", &values)?;
        let largest = largest_magnitude(values.data());
        check_logit_range::<T>("sinkhorn", self.tau, largest, precision_limit::<T>())?;
        // The backward pass replays the rounds from the scalings of every round: 2n values
        // per round and matrix.
        let history = (self.iterations as f64) * (batch as f64) * (2 * n) as f64;
        if history > MAX_HISTORY as f64 {
            return Err(Error::invalid(
                "sinkhorn",
                "iterations",
                self.iterations,
                format!(
                    "the backward pass keeps 2n = {} scalings per round for each of {batch} matrices, at most {MAX_HISTORY} in all; lower the iterations (a tolerance can still stop earlier)",
                    2 * n
                ),
            ));
        }
        let report = Rc::new(RefCell::new(None));
        let op = SinkhornOp {
            inv_tau,
            iterations: self.iterations,
            tolerance: self.tolerance,
            history: Vec::new(),
            report: Rc::clone(&report),
        };
        let p = log_scores.tape().apply(op, &[log_scores])?;
        let report = report
            .borrow_mut()
            .take()
            .expect("the forward pass sets the report");
        Ok((p, report))
    }

    /// Gumbel-Sinkhorn with fixed noise: applies the operator to
    /// `log_scores + noise_factor · noise`, `noise` of shape `[S, ...log_scores]`.
    ///
    /// # Errors
    /// As [`Sinkhorn::apply`], and [`autograd::Error::Shape`] for a noise of another shape.
    pub fn apply_with_noise<'t, T: SortFloat>(
        &self,
        log_scores: Var<'t, T>,
        noise: &Tensor<T>,
    ) -> Result<(Var<'t, T>, SinkhornReport)> {
        self.check::<T>()?;
        let perturbed = perturb("sinkhorn", log_scores, noise, self.noise_factor)?;
        self.apply(perturbed)
    }

    /// Gumbel-Sinkhorn: applies the operator to `S` copies `X + noise_factor · g` with
    /// standard Gumbel noise `g` from `gumbel`'s seeded generator. The result has shape
    /// `[S, ..., n, n]`.
    ///
    /// # Errors
    /// As [`Sinkhorn::apply`] and [`Gumbel::noise`].
    pub fn apply_gumbel<'t, T: SortFloat>(
        &self,
        log_scores: Var<'t, T>,
        gumbel: &Gumbel,
    ) -> Result<(Var<'t, T>, SinkhornReport)> {
        let noise = gumbel.noise::<T>("sinkhorn", log_scores.shape().dims())?;
        self.apply_with_noise(log_scores, &noise)
    }
}

/// Upper bound on the scalings that the rounds of one call keep for the backward pass
/// (iterations × matrices × 2n; 2 GB in `f64`).
const MAX_HISTORY: usize = 1 << 28;

/// The scaling vectors of one matrix after each round: `u` then `v`, `2n` values per round.
struct History<T> {
    rounds: usize,
    scalings: Vec<T>,
}

/// The fused Sinkhorn node.
struct SinkhornOp<T> {
    inv_tau: T,
    iterations: usize,
    tolerance: Option<f64>,
    history: Vec<History<T>>,
    report: Rc<RefCell<Option<SinkhornReport>>>,
}

/// Sets `u_i = logsumexp_j(x_ij·inv_tau − v_j)` for every row.
#[inline(always)]
fn row_logsumexp<T: SortFloat>(x: &[T], inv_tau: T, v: &[T], u: &mut [T], scratch: &mut [T]) {
    let n = v.len();
    for (i, ui) in u.iter_mut().enumerate() {
        let row = &x[i * n..(i + 1) * n];
        for ((z, &xij), &vj) in scratch.iter_mut().zip(row).zip(v) {
            *z = xij * inv_tau - vj;
        }
        let m = max(scratch);
        for z in scratch.iter_mut() {
            *z = (*z - m).fast_exp();
        }
        *ui = m + sum(scratch).ln();
    }
}

/// Sets `v_j = logsumexp_i(x_ij·inv_tau − u_i)` for every column, reading rows in order.
#[inline(always)]
fn column_logsumexp<T: SortFloat>(x: &[T], inv_tau: T, u: &[T], v: &mut [T], column_max: &mut [T]) {
    let n = u.len();
    column_max.fill(T::neg_infinity());
    for (i, &ui) in u.iter().enumerate() {
        for (m, &xij) in column_max.iter_mut().zip(&x[i * n..(i + 1) * n]) {
            let z = xij * inv_tau - ui;
            *m = if z > *m { z } else { *m };
        }
    }
    v.fill(T::zero());
    for (i, &ui) in u.iter().enumerate() {
        for ((acc, &m), &xij) in v
            .iter_mut()
            .zip(column_max.iter())
            .zip(&x[i * n..(i + 1) * n])
        {
            *acc += (xij * inv_tau - ui - m).fast_exp();
        }
    }
    for (vj, &m) in v.iter_mut().zip(column_max.iter()) {
        *vj = m + vj.ln();
    }
}

impl<T: SortFloat> Op<T> for SinkhornOp<T> {
    fn name(&self) -> &str {
        "sinkhorn"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let x_all = &inputs[0];
        let (batch, n) = check_square("sinkhorn", "log_scores", x_all)?;
        let x = x_all.data();
        let (inv_tau, iterations, tolerance) = (self.inv_tau, self.iterations, self.tolerance);

        // Each output matrix is computed by one task, which writes its history and marginal
        // error to the side buffer entry of the same batch index.
        // NOTE: the rounds of one matrix run on one thread, so a single large matrix (batch
        // of 1) does not use the thread pool.
        let mut out = zeroed(batch * n * n);
        let mut histories: Vec<(History<T>, f64)> = (0..batch)
            .map(|_| {
                (
                    History {
                        rounds: 0,
                        scalings: Vec::new(),
                    },
                    0.0,
                )
            })
            .collect();
        let work = (batch * n * n).saturating_mul(iterations).saturating_mul(8);
        for_each_matrix(
            &mut out,
            n * n,
            &mut histories,
            work,
            |b, p, (history, error)| {
                dispatch(
                    #[inline(always)]
                    || {
                        let xb = &x[b * n * n..(b + 1) * n * n];
                        let mut u = vec![T::zero(); n];
                        let mut v = vec![T::zero(); n];
                        let mut scratch = vec![T::zero(); n];
                        // Grown round by round: with a tolerance, far fewer rounds than
                        // `iterations` may run.
                        let mut scalings = Vec::new();
                        let mut rounds = 0;
                        for round in 0..iterations {
                            let previous_u = u.clone();
                            row_logsumexp(xb, inv_tau, &v, &mut u, &mut scratch);
                            if let (Some(tolerance), true) = (tolerance, round > 0) {
                                // Row i of the current iterate sums to exp(u_new − u_old).
                                let change = u
                                    .iter()
                                    .zip(&previous_u)
                                    .map(|(a, b)| ((*a - *b).as_f64().exp() - 1.0).abs())
                                    .fold(0.0, f64::max);
                                if change < tolerance {
                                    u = previous_u;
                                    break;
                                }
                            }
                            column_logsumexp(xb, inv_tau, &u, &mut v, &mut scratch);
                            scalings.extend_from_slice(&u);
                            scalings.extend_from_slice(&v);
                            rounds += 1;
                        }

                        let mut column_sums = vec![0.0f64; n];
                        let mut worst = 0.0f64;
                        for i in 0..n {
                            let row = &mut p[i * n..(i + 1) * n];
                            for ((pij, &xij), &vj) in
                                row.iter_mut().zip(&xb[i * n..(i + 1) * n]).zip(&v)
                            {
                                *pij = (xij * inv_tau - u[i] - vj).fast_exp();
                            }
                            worst = worst.max((sum(row).as_f64() - 1.0).abs());
                            for (c, &pij) in column_sums.iter_mut().zip(row.iter()) {
                                *c += pij.as_f64();
                            }
                        }
                        for c in column_sums {
                            worst = worst.max((c - 1.0).abs());
                        }
                        *history = History { rounds, scalings };
                        *error = worst;
                    },
                )
            },
        );

        let report = SinkhornReport {
            iterations: histories.iter().map(|(h, _)| h.rounds).max().unwrap_or(0),
            iterations_per_matrix: histories.iter().map(|(h, _)| h.rounds).collect(),
            max_marginal_error: histories.iter().map(|(_, e)| *e).fold(0.0, f64::max),
        };
        *self.report.borrow_mut() = Some(report);
        self.history = histories.into_iter().map(|(h, _)| h).collect();
        Tensor::from_vec(out, x_all.shape().clone())
    }

    fn backward(&self, args: &autograd::BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        if !args.needs_grad[0] {
            return Ok(vec![None]);
        }
        let x_all = &args.inputs[0];
        let n = *x_all.dims().last().expect("checked in forward");
        let batch = x_all.numel() / (n * n);
        let x = x_all.data();
        let p_all = args.output.data();
        let g_all = args.grad_output.data();
        let inv_tau = self.inv_tau;
        let history = &self.history;

        let mut grad = zeroed(batch * n * n);
        let work = (batch * n * n)
            .saturating_mul(self.iterations)
            .saturating_mul(8);
        for_each_row(&mut grad, n * n, work, |b, d| {
            dispatch(
                #[inline(always)]
                || {
                    let xb = &x[b * n * n..(b + 1) * n * n];
                    let h = &history[b];
                    // ∂L/∂(log P) = G ⊙ P.
                    for ((di, &pi), &gi) in d
                        .iter_mut()
                        .zip(&p_all[b * n * n..])
                        .zip(&g_all[b * n * n..])
                    {
                        *di = gi * pi;
                    }
                    let zeros = vec![T::zero(); n];
                    let mut sums = vec![T::zero(); n];
                    let mut scratch = vec![T::zero(); n];
                    for round in (0..h.rounds).rev() {
                        let u = &h.scalings[round * 2 * n..round * 2 * n + n];
                        let v = &h.scalings[round * 2 * n + n..(round + 1) * 2 * n];
                        let v_before = if round == 0 {
                            &zeros[..]
                        } else {
                            &h.scalings[(round - 1) * 2 * n + n..round * 2 * n]
                        };
                        // Column step Z = L0 − u − v: ∂/∂Y = ∂/∂Z − exp(Z) ⊙ colsum(∂/∂Z).
                        sums.fill(T::zero());
                        for row in d.chunks_exact(n) {
                            for (s, &di) in sums.iter_mut().zip(row) {
                                *s += di;
                            }
                        }
                        for i in 0..n {
                            let row = &mut d[i * n..(i + 1) * n];
                            let x_row = &xb[i * n..(i + 1) * n];
                            for (((di, &xij), &vj), &sj) in
                                row.iter_mut().zip(x_row).zip(v).zip(&sums)
                            {
                                *di -= (xij * inv_tau - u[i] - vj).fast_exp() * sj;
                            }
                        }
                        // Row step Y = L0 − u − v_before: ∂/∂X = ∂/∂Y − exp(Y) ⊙ rowsum(∂/∂Y).
                        for i in 0..n {
                            let row = &mut d[i * n..(i + 1) * n];
                            let x_row = &xb[i * n..(i + 1) * n];
                            let row_sum = sum(row);
                            for ((z, &xij), &vj) in scratch.iter_mut().zip(x_row).zip(v_before) {
                                *z = (xij * inv_tau - u[i] - vj).fast_exp();
                            }
                            for (di, &e) in row.iter_mut().zip(&scratch) {
                                *di -= e * row_sum;
                            }
                        }
                    }
                    for di in d.iter_mut() {
                        *di *= inv_tau;
                    }
                },
            )
        });
        Ok(vec![Some(Tensor::from_vec(grad, x_all.shape().clone())?)])
    }
}

/// Runs `f(b, chunk, side)` for each `chunk_len`-long chunk of `out` with the matching
/// element of `side`, in parallel when `work` reaches the engine's threshold.
fn for_each_matrix<T: Float, S: Send>(
    out: &mut [T],
    chunk_len: usize,
    side: &mut [S],
    work: usize,
    f: impl Fn(usize, &mut [T], &mut S) + Sync + Send,
) {
    autograd::parallel::for_each_row2(out, chunk_len, side, 1, work, |b, chunk, side| {
        f(b, chunk, &mut side[0])
    });
}
