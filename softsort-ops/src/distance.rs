//! The distance SoftSort compares sorted and unsorted scores with.

use std::fmt;
use std::str::FromStr;

use autograd::{Error, Float};

/// The distance `d(a, b)` in SoftSort's logits `−d(ŝ_i, s_j)/τ`.
///
/// ```
/// use softsort_ops::Distance;
///
/// assert_eq!("squared".parse::<Distance>()?, Distance::Squared);
/// let err = "cosine".parse::<Distance>().unwrap_err();
/// assert!(err.to_string().contains("invalid distance = cosine"));
/// # Ok::<(), autograd::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distance {
    /// `|a − b|`, with derivative `sign(a − b)` (0 at `a = b`, as PyTorch's `abs`).
    #[default]
    Abs,
    /// `(a − b)²`, with derivative `2 (a − b)`.
    Squared,
}

impl Distance {
    /// Returns `d(u)` for the difference `u = a − b`.
    #[inline(always)]
    pub(crate) fn eval<T: Float>(self, u: T) -> T {
        match self {
            Distance::Abs => u.abs(),
            Distance::Squared => u * u,
        }
    }

    /// Returns `d′(u)`, the derivative with respect to `u = a − b`.
    #[inline(always)]
    pub(crate) fn derivative<T: Float>(self, u: T) -> T {
        match self {
            Distance::Abs => {
                if u > T::zero() {
                    T::one()
                } else if u < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                }
            }
            Distance::Squared => u + u,
        }
    }
}

impl FromStr for Distance {
    type Err = Error;

    /// Parses `"abs"` (also `"l1"`) or `"squared"` (also `"sq"`, `"l2"`), case-insensitively.
    fn from_str(name: &str) -> Result<Self, Error> {
        match name.to_ascii_lowercase().as_str() {
            "abs" | "l1" => Ok(Distance::Abs),
            "squared" | "sq" | "l2" => Ok(Distance::Squared),
            _ => Err(Error::invalid(
                "softsort",
                "distance",
                name,
                "expected \"abs\" or \"squared\"",
            )),
        }
    }
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distance::Abs => "abs",
            Distance::Squared => "squared",
        })
    }
}
