//! Upper bounds on the sizes of a run, checked with its other settings before any data is
//! loaded, so that a huge setting gets an error instead of an allocation failure later.

use crate::error::{Error, Result};

/// Upper bound on the 112×28 images (sequences × numbers per sequence) of one training step or
/// one evaluation chunk. By the layer sizes, the CNN keeps about 1.5 MB of activations per
/// image and as much again for their gradients (an estimate), so a step stays near 6 GB.
pub const MAX_IMAGES_PER_STEP: usize = 2048;

/// Upper bound on the entries of the relaxed permutation matrices of one training step
/// (512 MB in f32 per copy).
pub const MAX_RELAXATION_ENTRIES: usize = 1 << 27;

/// Upper bound on the numbers (sequences × numbers per sequence) that one evaluation scores.
pub const MAX_EVAL_NUMBERS: usize = 1 << 26;

/// Checks that the product of `factors` is at most `limit` and does not overflow.
///
/// # Errors
/// [`Error::InvalidArgument`] from `op` for the argument `arg` (such as `batch-size × n`), with
/// the factors as its value and `hint`, which should say what the limit bounds and how to stay
/// below it.
pub fn check_product(
    op: &str,
    arg: &str,
    factors: &[usize],
    limit: usize,
    hint: &str,
) -> Result<()> {
    let product = factors
        .iter()
        .try_fold(1usize, |acc, &factor| acc.checked_mul(factor));
    if product.is_some_and(|product| product <= limit) {
        return Ok(());
    }
    let value = factors
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" × ");
    Err(Error::invalid(op, arg, value, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_up_to_the_limit_pass() {
        assert!(check_product("op", "a × b", &[4, 5], 20, "hint").is_ok());
    }

    #[test]
    fn larger_products_name_their_factors() {
        let message = check_product("op", "a × b", &[4, 6], 20, "keep it small")
            .unwrap_err()
            .to_string();
        assert_eq!(message, "op: invalid a × b = 4 × 6: keep it small");
    }

    #[test]
    fn overflowing_products_fail() {
        assert!(check_product("op", "a × b", &[usize::MAX, 2], usize::MAX, "hint").is_err());
    }
}
