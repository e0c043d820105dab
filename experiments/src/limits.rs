//! Upper bounds on the sizes of a run, checked with its other settings before any data is
//! loaded, so that a huge setting gets an error instead of an allocation failure later.

use crate::error::{Error, Result};

/// Upper bound on the 112×28 images (sequences × numbers per sequence) of one training step or
/// one evaluation chunk. A sort-mnist step at n = 3 peaked at 2.2 GB with 900 images and
/// 4.0 GB with 1,650, and 2,046 images failed under a 6 GB address-space limit, so 1,024
/// images keep a step near 3 GB.
pub const MAX_IMAGES_PER_STEP: usize = 1024;

/// Upper bound on the entries of the relaxed permutation matrices of one training step
/// (512 MB in f32 per copy).
pub const MAX_RELAXATION_ENTRIES: usize = 1 << 27;

/// Upper bound on the numbers (sequences × numbers per sequence) that one evaluation scores.
pub const MAX_EVAL_NUMBERS: usize = 1 << 26;

/// Checks that the product of `factors` is at most `limit` and does not overflow.
///
/// # Errors
/// [`Error::InvalidArgument`] from `op` for the argument `arg` (such as `batch-size × n`), with
/// the factors as its value and `hint`. The hint names the bounded quantity and the flags that
/// lower it.
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

/// The sizes of a run over sequences of `n` numbers, each number one 112×28 image, as
/// sort-mnist and quantile-mnist train.
pub struct SequenceRun<'a> {
    /// The program, for error messages.
    pub op: &'a str,
    /// Numbers per sequence.
    pub n: usize,
    /// Sequences per training step (the `--batch-size` flag).
    pub batch_size: usize,
    /// Noise samples per sequence; 1 for the deterministic methods.
    pub samples: usize,
    /// The flags that set the sequences of one forward pass, with their values; the training
    /// batch comes first.
    pub forward_passes: &'a [(&'a str, usize)],
    /// The flags that set the sequences of one evaluation, with their values.
    pub evaluations: &'a [(&'a str, usize)],
}

/// Checks that a forward pass, the relaxed permutation matrices of a step and an evaluation
/// of `run` stay within [`MAX_IMAGES_PER_STEP`], [`MAX_RELAXATION_ENTRIES`] and
/// [`MAX_EVAL_NUMBERS`].
///
/// # Errors
/// [`Error::InvalidArgument`] from `run.op` naming the first product over its bound and the
/// flags to lower.
pub fn check_sequence_run(run: &SequenceRun<'_>) -> Result<()> {
    let n = run.n;
    for &(name, sequences) in run.forward_passes {
        check_product(
            run.op,
            &format!("{name} × n"),
            &[sequences, n],
            MAX_IMAGES_PER_STEP,
            &format!(
                "one forward pass holds at most {MAX_IMAGES_PER_STEP} images (about 2.5 MB each); lower --{name} or -n"
            ),
        )?;
    }
    check_product(
        run.op,
        "samples × batch-size × n × n",
        &[run.samples, run.batch_size, n, n],
        MAX_RELAXATION_ENTRIES,
        &format!(
            "the relaxed permutation matrices of a step hold at most {MAX_RELAXATION_ENTRIES} entries; lower --samples, --batch-size or -n"
        ),
    )?;
    for &(name, sequences) in run.evaluations {
        check_product(
            run.op,
            &format!("{name} × n"),
            &[sequences, n],
            MAX_EVAL_NUMBERS,
            &format!(
                "an evaluation scores at most {MAX_EVAL_NUMBERS} numbers; lower --{name} or -n"
            ),
        )?;
    }
    Ok(())
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
