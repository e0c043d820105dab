//! The element types a [`Tensor`](crate::Tensor) can hold.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A floating-point element type: implemented for `f32` and `f64`.
///
/// Besides the arithmetic of [`num_traits::Float`], it names the type for error messages and
/// checkpoints, converts to and from `f64` and dispatches GEMM to the matching
/// `matrixmultiply` kernel.
pub trait Float:
    num_traits::Float
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// The type's name as PyTorch and safetensors spell it: `"F32"` or `"F64"`.
    const DTYPE: &'static str;

    /// Converts from `f64`, rounding to nearest for `f32`.
    fn from_f64(x: f64) -> Self;

    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;

    /// Computes `C = alpha · A · B + beta · C` for strided row-major or column-major operands.
    ///
    /// `A` is `m × k`, `B` is `k × n` and `C` is `m × n`; `rs*` and `cs*` are the row and column
    /// strides in elements, so a transposed operand is passed by swapping its strides.
    ///
    /// # Safety
    /// The pointers must be valid for every element the shapes and strides address, and `c` must
    /// not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Float for f32 {
    const DTYPE: &'static str = "F32";

    fn from_f64(x: f64) -> Self {
        x as f32
    }

    fn as_f64(self) -> f64 {
        self as f64
    }

    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "F64";

    fn from_f64(x: f64) -> Self {
        x
    }

    fn as_f64(self) -> f64 {
        self
    }

    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
    }
}
