//! Quantities derived from a relaxed permutation matrix `P` of shape `[..., n, n]`.

use autograd::{BackwardArgs, Error, Float, Op, Result, Tensor, Var};

use crate::kernels::zeroed;

/// Splits the dims of `P` into `(leading batch count, n)`, checking that `P` is square.
fn permutation_dims(op: &str, p: &Tensor<impl Float>) -> Result<(usize, usize)> {
    let dims = p.dims();
    if dims.len() < 2 || dims[dims.len() - 1] != dims[dims.len() - 2] || dims[dims.len() - 1] == 0 {
        return Err(Error::shape(
            op,
            format!(
                "the permutation matrix must have shape [..., n, n] with n ≥ 1, got {}",
                p.shape()
            ),
        ));
    }
    let n = dims[dims.len() - 1];
    Ok((p.numel() / (n * n), n))
}

/// Computes `P · X`: the values `X` (`[..., n, d]`) rearranged by the relaxed permutation
/// `P` (`[..., n, n]`), giving `[..., n, d]`. Row `i` of the result is the soft version of the
/// row of `X` that sorts to position `i`.
///
/// The leading axes of `X` must equal the trailing leading axes of `P`, so one `X` can be
/// shared by several samples of `P` (`P` of shape `[S, ..., n, n]`).
///
/// Gradients: `∂L/∂P = G · Xᵀ`, `∂L/∂X = Pᵀ · G` (summed over the axes `X` is shared along).
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::apply_permutation;
///
/// let tape = Tape::<f64>::new();
/// let p = tape.constant(Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0], [2, 2])?);
/// let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2])?);
/// assert_eq!(apply_permutation(p, x)?.value().to_vec(), vec![3.0, 4.0, 1.0, 2.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] if `P` is not `[..., n, n]` or `X` is not `[..., n, d]` with matching axes.
pub fn apply_permutation<'t, T: Float>(p: Var<'t, T>, x: Var<'t, T>) -> Result<Var<'t, T>> {
    p.tape()
        .apply(PermutationProduct { vector: false }, &[p, x])
}

/// Computes the soft-sorted values `P · s` for scores `s` of shape `[..., n]`, giving `[..., n]`.
///
/// With `P` from an operator applied to `s` this approximates `s` sorted (descending unless
/// the operator was set to ascending). Gradients as for [`apply_permutation`] with `d = 1`.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::{sorted_values, SoftSort};
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
/// let p = SoftSort::new(1e-3).apply(s)?;
/// assert_eq!(sorted_values(p, s)?.value().to_vec(), vec![2.0, 1.0, 0.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] if the shapes do not match as `[..., n, n]` and `[..., n]`.
pub fn sorted_values<'t, T: Float>(p: Var<'t, T>, s: Var<'t, T>) -> Result<Var<'t, T>> {
    p.tape().apply(PermutationProduct { vector: true }, &[p, s])
}

/// Computes the soft ranks `r_j = Σ_i i · P[i, j]` with 1-based positions `i`, giving
/// `[..., n]`: for a hard permutation, `r_j` is the position (1 = first) element `j` sorts to.
///
/// It is composed from `mul` and `sum_axes`, so the gradient `∂L/∂P[i, j] = i · ∂L/∂r_j` comes
/// from those ops.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::{soft_ranks, SoftSort};
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
/// let ranks = soft_ranks(SoftSort::new(1e-3).apply(s)?)?;
/// assert_eq!(ranks.value().to_vec(), vec![1.0, 3.0, 2.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] if `P` is not `[..., n, n]`.
pub fn soft_ranks<'t, T: Float>(p: Var<'t, T>) -> Result<Var<'t, T>> {
    let (_, n) = permutation_dims("soft_ranks", &p.value())?;
    let positions = Tensor::from_vec((1..=n).map(|i| T::from_f64(i as f64)).collect(), [n, 1])?;
    p.mul(p.tape().constant(positions))?.sum_axes(&[-2], false)
}

/// Computes the soft top-`k` mask `m_j = Σ_{i<k} P[i, j]`, giving `[..., n]`: for a hard
/// descending permutation it is 1 on the `k` largest scores and 0 elsewhere.
///
/// It is composed from `mul` and `sum_axes`; `∂L/∂P[i, j] = ∂L/∂m_j` for `i < k`, else 0.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::{top_k_mask, NeuralSort};
///
/// let tape = Tape::<f64>::new();
/// let s = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
/// let mask = top_k_mask(NeuralSort::new(1e-3).apply(s)?, 2)?;
/// assert_eq!(mask.value().to_vec(), vec![1.0, 0.0, 1.0]);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] unless `1 ≤ k ≤ n`, [`Error::Shape`] if `P` is not `[..., n, n]`.
pub fn top_k_mask<'t, T: Float>(p: Var<'t, T>, k: usize) -> Result<Var<'t, T>> {
    let (_, n) = permutation_dims("top_k_mask", &p.value())?;
    if k == 0 || k > n {
        return Err(Error::invalid(
            "top_k_mask",
            "k",
            k,
            format!("must be between 1 and n = {n}"),
        ));
    }
    let rows = Tensor::from_vec(
        (0..n)
            .map(|i| if i < k { T::one() } else { T::zero() })
            .collect(),
        [n, 1],
    )?;
    p.mul(p.tape().constant(rows))?.sum_axes(&[-2], false)
}

/// The offset added inside the logarithm of [`permutation_cross_entropy`], so that a zero
/// probability gives a large finite loss instead of infinity.
pub const LOG_OFFSET: f64 = 1e-20;

/// Computes the mean row-wise cross-entropy between target permutations and `P`:
///
/// ```text
/// loss = −(1/R) Σ_rows log(P[..., i, π(i)] + 1e-20)
/// ```
///
/// over all `R` rows of all batch elements, where `targets` (shape `[..., n]`, given as
/// `target_shape`) contains `π(i)`, the input index that belongs at sorted position `i`. This is
/// the loss of the MNIST sorting experiment of the SoftSort and NeuralSort papers. Each row is
/// scored on its own, so the targets of one matrix need not form a permutation: any column
/// index per row is accepted (the `fast` NLL ops, by contrast, require a permutation).
///
/// Gradient: `∂loss/∂P[..., i, π(i)] = −1 / (R · (P[..., i, π(i)] + 1e-20))`, zero elsewhere.
///
/// ```
/// use autograd::{Tape, Tensor};
/// use softsort_ops::permutation_cross_entropy;
///
/// let tape = Tape::<f64>::new();
/// let p = tape.param(Tensor::from_vec(vec![0.5, 0.5, 0.25, 0.75], [2, 2])?);
/// let loss = permutation_cross_entropy(p, &[0, 1], &[2])?;
/// let expected = -(0.5f64.ln() + 0.75f64.ln()) / 2.0;
/// assert!((loss.value().item()? - expected).abs() < 1e-12);
/// # Ok::<(), autograd::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] if `P` is not `[..., n, n]` or `target_shape` is not its leading axes
/// plus `n` or disagrees with `targets.len()`; [`Error::InvalidArgument`] for a target
/// index `≥ n`, or for a picked entry of `P` that is negative or not finite.
pub fn permutation_cross_entropy<'t, T: Float>(
    p: Var<'t, T>,
    targets: &[usize],
    target_shape: &[usize],
) -> Result<Var<'t, T>> {
    const OP: &str = "permutation_cross_entropy";
    let value = p.value();
    let (_, n) = permutation_dims(OP, &value)?;
    let row_dims = &value.dims()[..value.ndim() - 1];
    if target_shape != row_dims || targets.len() != row_dims.iter().product::<usize>() {
        return Err(Error::shape(
            OP,
            format!(
                "targets must have shape {} (one index per row of P, shape {}), got shape {:?} with {} indices",
                autograd::Shape::new(row_dims),
                value.shape(),
                target_shape,
                targets.len()
            ),
        ));
    }
    if let Some(position) = targets.iter().position(|&t| t >= n) {
        return Err(Error::invalid(
            OP,
            "targets",
            format!("{} at flat index {position}", targets[position]),
            format!("every target must be a column index below n = {n}"),
        ));
    }
    // Only the picked entries enter the loss, so only they are checked.
    let data = value.data();
    for (row, &t) in targets.iter().enumerate() {
        let picked = data[row * n + t];
        if !(picked.is_finite() && picked >= T::zero()) {
            return Err(Error::invalid(
                OP,
                "P",
                format!("{picked} at row {row}, column {t}"),
                "the entries the targets pick must be finite probabilities (≥ 0)",
            ));
        }
    }
    p.tape().apply(
        CrossEntropy {
            targets: targets.to_vec(),
        },
        &[p],
    )
}

/// The fused node of [`permutation_cross_entropy`].
struct CrossEntropy {
    targets: Vec<usize>,
}

impl<T: Float> Op<T> for CrossEntropy {
    fn name(&self) -> &str {
        "permutation_cross_entropy"
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let p = inputs[0].data();
        let n = *inputs[0].dims().last().expect("checked by the caller");
        let offset = T::from_f64(LOG_OFFSET);
        let mut total = 0.0f64;
        for (row, &t) in self.targets.iter().enumerate() {
            total += (p[row * n + t] + offset).ln().as_f64();
        }
        Ok(Tensor::scalar(T::from_f64(
            -total / self.targets.len() as f64,
        )))
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        if !args.needs_grad[0] {
            return Ok(vec![None]);
        }
        let input = &args.inputs[0];
        let p = input.data();
        let n = *input.dims().last().expect("checked by the caller");
        let offset = T::from_f64(LOG_OFFSET);
        let scale = -args.grad_output.data()[0] / T::from_f64(self.targets.len() as f64);
        let mut grad = zeroed(input.numel());
        for (row, &t) in self.targets.iter().enumerate() {
            let at = row * n + t;
            grad[at] = scale / (p[at] + offset);
        }
        Ok(vec![Some(Tensor::from_vec(grad, input.shape().clone())?)])
    }
}

/// The fused node of [`apply_permutation`] (`vector = false`, `X` is `[..., n, d]`) and
/// [`sorted_values`] (`vector = true`, `X` is `[..., n]`).
struct PermutationProduct {
    vector: bool,
}

/// The layout of one product: `batch` matrices of `P`, each multiplied with matrix
/// `b % x_batch` of `X`, of `n × d` elements.
struct Layout {
    batch: usize,
    x_batch: usize,
    n: usize,
    d: usize,
}

impl PermutationProduct {
    fn layout<T: Float>(
        &self,
        op: &str,
        p: &Tensor<T>,
        x: &Tensor<T>,
    ) -> Result<(Layout, Vec<usize>)> {
        let (batch, n) = permutation_dims(op, p)?;
        let p_lead = &p.dims()[..p.ndim() - 2];
        let (x_lead, x_rows, d) = if self.vector {
            match x.dims().split_last() {
                Some((&rows, lead)) => (lead, rows, 1),
                None => (&[][..], 0, 0),
            }
        } else if x.ndim() >= 2 {
            let dims = x.dims();
            (
                &dims[..dims.len() - 2],
                dims[dims.len() - 2],
                dims[dims.len() - 1],
            )
        } else {
            (&[][..], 0, 0)
        };
        if x_rows != n || x_lead.len() > p_lead.len() || !p_lead.ends_with(x_lead) {
            let expected = if self.vector {
                "[..., n]"
            } else {
                "[..., n, d]"
            };
            return Err(Error::shape(
                op,
                format!(
                    "values must have shape {expected} with n = {n} and leading axes that end the leading axes of P, got P {} and values {}",
                    p.shape(),
                    x.shape()
                ),
            ));
        }
        let mut out_dims = p_lead.to_vec();
        out_dims.push(n);
        if !self.vector {
            out_dims.push(d);
        }
        let x_batch = x_lead.iter().product();
        Ok((
            Layout {
                batch,
                x_batch,
                n,
                d,
            },
            out_dims,
        ))
    }
}

/// Computes `C = op(A) · op(B)` for row-major `A` and `B`, where `transpose_a` / `transpose_b` read the
/// stored `k × m` / `n × k` matrices transposed.
#[allow(clippy::too_many_arguments)]
fn gemm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    transpose_a: bool,
    b: &[T],
    transpose_b: bool,
    c: &mut [T],
) {
    let (rsa, csa) = if transpose_a {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if transpose_b {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    assert!(a.len() >= m * k, "A is smaller than m × k");
    assert!(b.len() >= k * n, "B is smaller than k × n");
    assert!(c.len() >= m * n, "C is smaller than m × n");
    // SAFETY: the slices contain at least m·k, k·n and m·n elements (asserted above), the
    // strides address no element beyond those, and `c` is a distinct mutable slice.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::one(),
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            T::zero(),
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

impl<T: Float> Op<T> for PermutationProduct {
    fn name(&self) -> &str {
        if self.vector {
            "sorted_values"
        } else {
            "apply_permutation"
        }
    }

    fn forward(&mut self, inputs: &[Tensor<T>]) -> Result<Tensor<T>> {
        let (p, x) = (&inputs[0], &inputs[1]);
        let (
            Layout {
                batch,
                x_batch,
                n,
                d,
            },
            out_dims,
        ) = self.layout(Op::<T>::name(self), p, x)?;
        let mut out = zeroed(batch * n * d);
        for b in 0..batch {
            let xb = b % x_batch.max(1);
            gemm(
                n,
                n,
                d,
                &p.data()[b * n * n..],
                false,
                &x.data()[xb * n * d..],
                false,
                &mut out[b * n * d..(b + 1) * n * d],
            );
        }
        Tensor::from_vec(out, out_dims)
    }

    fn backward(&self, args: &BackwardArgs<T>) -> Result<Vec<Option<Tensor<T>>>> {
        let (p, x) = (&args.inputs[0], &args.inputs[1]);
        let (
            Layout {
                batch,
                x_batch,
                n,
                d,
            },
            _,
        ) = self.layout(Op::<T>::name(self), p, x)?;
        let g = args.grad_output.data();
        let grad_p = if args.needs_grad[0] {
            // ∂L/∂P_b = G_b · X_bᵀ.
            let mut out = zeroed(batch * n * n);
            for b in 0..batch {
                let xb = b % x_batch.max(1);
                gemm(
                    n,
                    d,
                    n,
                    &g[b * n * d..],
                    false,
                    &x.data()[xb * n * d..],
                    true,
                    &mut out[b * n * n..(b + 1) * n * n],
                );
            }
            Some(Tensor::from_vec(out, p.shape().clone())?)
        } else {
            None
        };
        let grad_x = if args.needs_grad[1] {
            // ∂L/∂X_b = P_bᵀ · G_b, returned per matrix of P; the tape sums the shared axes.
            let mut out = zeroed(batch * n * d);
            for b in 0..batch {
                gemm(
                    n,
                    n,
                    d,
                    &p.data()[b * n * n..],
                    true,
                    &g[b * n * d..],
                    false,
                    &mut out[b * n * d..(b + 1) * n * d],
                );
            }
            Some(Tensor::from_vec(out, args.grad_output.shape().clone())?)
        } else {
            None
        };
        Ok(vec![grad_p, grad_x])
    }
}
