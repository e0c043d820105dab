//! Differentiable sorting operators as fused [`autograd::Op`] nodes: SoftSort, NeuralSort
//! and Sinkhorn, their Gumbel (stochastic) and straight-through (hard) variants, and the
//! quantities derived from a relaxed permutation matrix.
//!
//! The [`fast`] module computes products with the absolute-distance SoftSort matrix in
//! O(n log n) without forming it; the operators here form `P` in O(n²) and cover every
//! variant.
//!
//! # Convention
//!
//! Scores have shape `[..., n]`: any leading batch axes (or none) and `n ≥ 1` elements to
//! sort. A relaxed permutation matrix `P` has shape `[..., n, n]`. Row `i` is sorted position
//! `i` and column `j` is input element `j`, so `P · s` approximates `s` sorted in
//! **descending** order (each operator has an `ascending` option that flips it). Every row of
//! SoftSort and NeuralSort sums to 1; Sinkhorn's rows and columns sum to 1 up to its reported
//! error. For `n = 1` every operator returns `[[1]]`.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use softsort_ops::{soft_ranks, sorted_values, SoftSort};
//!
//! let tape = Tape::<f64>::new();
//! let s = tape.param(Tensor::from_vec(vec![2.0, 0.0, 1.0], [3])?);
//! let p = SoftSort::new(1e-3).apply(s)?;            // [3, 3]
//! assert_eq!(p.value().to_vec(), vec![
//!     1.0, 0.0, 0.0, // position 1 takes element 0 (the 2)
//!     0.0, 0.0, 1.0, // position 2 takes element 2 (the 1)
//!     0.0, 1.0, 0.0, // position 3 takes element 1 (the 0)
//! ]);
//! assert_eq!(sorted_values(p, s)?.value().to_vec(), vec![2.0, 1.0, 0.0]);
//! assert_eq!(soft_ranks(p)?.value().to_vec(), vec![1.0, 3.0, 2.0]);
//!
//! // Gradients flow back to the scores through the fused backward.
//! let loss = sorted_values(SoftSort::new(1.0).apply(s)?, s)?.sum()?;
//! let grads = tape.backward(loss)?;
//! assert_eq!(grads.get(s)?.dims(), &[3]);
//! # Ok::<(), autograd::Error>(())
//! ```
//!
//! # Numerics
//!
//! All softmaxes subtract their row maximum and Sinkhorn works in the log domain, so scores
//! spread over ±1e4 with a temperature of 1e-3 give finite values and gradients in `f32`
//! and `f64`. The operators cannot separate scores that the float type cannot: in `f32`
//! two scores closer than one ulp of their magnitude (a relative gap of about
//! `2^-23 ≈ 1.2e-7 · |s|`, so about 1e-3 at `|s| = 1e4`) are stored as the same number and
//! treated as a tie, and the difference `ŝ_i − s_j` carries an absolute rounding error of
//! that size, which the temperature divides. In `f64` the gap is about `2.2e-16 · |s|`.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use softsort_ops::SoftSort;
//!
//! // 1e4 + 1e-4 rounds to 1e4 in f32, so the two scores tie and share both rows.
//! let tape = Tape::<f32>::new();
//! let s = tape.constant(Tensor::from_vec(vec![1e4, 1e4 + 1e-4], [2])?);
//! assert_eq!(SoftSort::new(1e-6).apply(s)?.value().to_vec(), vec![0.5; 4]);
//!
//! // In f64 they stay apart, and a small enough temperature separates them.
//! let tape = Tape::<f64>::new();
//! let s = tape.constant(Tensor::from_vec(vec![1e4, 1e4 + 1e-4], [2])?);
//! let p = SoftSort::new(1e-6).apply(s)?.value();
//! assert!(p.get(&[0, 1]).unwrap() > 0.999 && p.get(&[0, 0]).unwrap() < 1e-40);
//! # Ok::<(), autograd::Error>(())
//! ```
//!
//! Errors are [`autograd::Error`] values whose messages name the operator, the argument and
//! the rejected value, for example `softsort: invalid temperature = -0.5: must be positive
//! and finite`.
//!
//! Kernels run in parallel (through [`autograd::parallel::for_each_row`]) above a size
//! threshold: SoftSort and NeuralSort over batch elements and rows, Sinkhorn over matrices.
//! Backward passes accumulate column sums per fixed block of rows, so results are
//! bit-identical for any thread count.

mod derived;
mod distance;
mod error;
pub mod fast;
mod float;
mod gumbel;
pub mod hungarian;
mod kernels;
mod neuralsort;
mod pairwise;
mod simd;
mod sinkhorn;
mod softsort;

pub use derived::{
    apply_permutation, permutation_cross_entropy, soft_ranks, sorted_values, top_k_mask, LOG_OFFSET,
};
pub use distance::Distance;
pub use float::SortFloat;
pub use gumbel::Gumbel;
pub use neuralsort::NeuralSort;
pub use sinkhorn::{Sinkhorn, SinkhornReport};
pub use softsort::SoftSort;
