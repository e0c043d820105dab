//! The large-MNIST sorting task: sequences of four-digit numbers, each drawn as four MNIST
//! digits stacked vertically, to be sorted in descending order of the numbers they show.
//!
//! ```
//! use experiments::large_mnist::LargeMnistGenerator;
//! use experiments::Dataset;
//!
//! let data = Dataset::embedded_mnist_sample()?;
//! let mut generator = LargeMnistGenerator::new(&data.train, 5, 42)?;
//! let batch = generator.next_batch(3)?;
//! assert_eq!(batch.images.dims(), &[15, 1, 112, 28]);
//! let numbers = batch.numbers_row(0);
//! let order = batch.permutation_row(0);
//! assert!(order.windows(2).all(|w| numbers[w[0]] >= numbers[w[1]]));
//! # Ok::<(), experiments::Error>(())
//! ```

use autograd::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::labeled_images::{LabeledImages, NUM_CLASSES};

/// The number of digits of every number, and of digit images stacked per sequence item.
pub const DIGITS_PER_NUMBER: usize = 4;

/// Numbers are drawn uniformly from `0..NUMBER_RANGE`, that is `0..=9999`.
pub const NUMBER_RANGE: u32 = 10_000;

/// A batch of `M` sequences of `n` numbers each, with their images and true order.
#[derive(Clone, Debug)]
pub struct SequenceBatch {
    /// The number of sequences `M`.
    pub batch_size: usize,
    /// The length `n` of each sequence.
    pub sequence_len: usize,
    /// The images, shape `[M·n, 1, 4·rows, cols]` (`[M·n, 1, 112, 28]` for MNIST), pixels in
    /// `[0, 1]`. Item `j` of sequence `s` is image `s·n + j`. Its top block shows the most
    /// significant digit, its bottom block the least significant one.
    pub images: Tensor<f32>,
    /// The numbers, `[M, n]` row-major, each in `0..=9999`.
    pub numbers: Vec<u32>,
    /// The permutation that sorts each sequence in descending order, `[M, n]` row-major:
    /// `numbers[s·n + permutations[s·n + i]]` is the `i`-th largest number of sequence `s`,
    /// and equal numbers keep their order in the sequence.
    pub permutations: Vec<usize>,
    /// The index, in the split the generator draws from, of each digit image used:
    /// `[M, n, 4]` row-major, top block first.
    pub digit_images: Vec<usize>,
}

impl SequenceBatch {
    /// The numbers of sequence `s`.
    ///
    /// # Panics
    /// If `s >= self.batch_size`.
    pub fn numbers_row(&self, s: usize) -> &[u32] {
        &self.numbers[s * self.sequence_len..(s + 1) * self.sequence_len]
    }

    /// The true descending permutation of sequence `s` (see [`SequenceBatch::permutations`]).
    ///
    /// # Panics
    /// If `s >= self.batch_size`.
    pub fn permutation_row(&self, s: usize) -> &[usize] {
        &self.permutations[s * self.sequence_len..(s + 1) * self.sequence_len]
    }

    /// Converts the numbers to a `[M, n]` tensor, for regression targets and sorting scores.
    pub fn numbers_tensor(&self) -> Tensor<f32> {
        let values = self.numbers.iter().map(|&number| number as f32).collect();
        Tensor::from_vec(values, [self.batch_size, self.sequence_len])
            .expect("numbers has batch_size · sequence_len elements")
    }
}

/// A seeded generator of [`SequenceBatch`]es from the images of one split.
///
/// For each item of each sequence it draws a number uniformly from `0..=9999`, then for each of
/// its four digits, most significant first, an image uniformly from that digit's images in the
/// split. All draws come from one [`StdRng`] seeded with `seed`, in that order, so equal
/// seeds give equal batches for a given version of the `rand` crate.
#[derive(Clone, Debug)]
pub struct LargeMnistGenerator<'a> {
    images: &'a LabeledImages,
    by_digit: [Vec<usize>; NUM_CLASSES],
    len: usize,
    rng: StdRng,
}

impl<'a> LargeMnistGenerator<'a> {
    /// Builds a generator of sequences of `len` numbers drawn from `images`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `len` is zero or if `images` lacks a digit.
    pub fn new(images: &'a LabeledImages, len: usize, seed: u64) -> Result<Self> {
        if len == 0 {
            return Err(Error::invalid(
                "LargeMnistGenerator::new",
                "len",
                len,
                "a sequence needs at least one number",
            ));
        }
        let by_digit = images.indices_by_label();
        if let Some(digit) = by_digit.iter().position(Vec::is_empty) {
            return Err(Error::invalid(
                "LargeMnistGenerator::new",
                "images",
                format!("{} images with no image of digit {digit}", images.len()),
                "every digit 0-9 needs at least one image; use a larger split",
            ));
        }
        Ok(LargeMnistGenerator {
            images,
            by_digit,
            len,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// The length `n` of each generated sequence.
    pub fn sequence_len(&self) -> usize {
        self.len
    }

    /// Draws the next batch of `M = sequences` sequences.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `sequences` is zero.
    pub fn next_batch(&mut self, sequences: usize) -> Result<SequenceBatch> {
        if sequences == 0 {
            return Err(Error::invalid(
                "LargeMnistGenerator::next_batch",
                "sequences",
                sequences,
                "a batch needs at least one sequence",
            ));
        }
        let rows = self.images.rows();
        let cols = self.images.cols();
        let items = sequences * self.len;
        let item_pixels = DIGITS_PER_NUMBER * rows * cols;

        let mut pixels = Vec::with_capacity(items * item_pixels);
        let mut numbers = Vec::with_capacity(items);
        let mut digit_images = Vec::with_capacity(items * DIGITS_PER_NUMBER);
        for _ in 0..items {
            let number = self.rng.gen_range(0..NUMBER_RANGE);
            for digit in digits_most_significant_first(number) {
                let candidates = &self.by_digit[digit];
                let index = candidates[self.rng.gen_range(0..candidates.len())];
                let image = self.images.image(index);
                pixels.extend(image.iter().map(|&pixel| f32::from(pixel) / 255.0));
                digit_images.push(index);
            }
            numbers.push(number);
        }

        let permutations = numbers
            .chunks(self.len)
            .flat_map(descending_permutation)
            .collect();
        let images = Tensor::from_vec(pixels, [items, 1, DIGITS_PER_NUMBER * rows, cols])?;
        Ok(SequenceBatch {
            batch_size: sequences,
            sequence_len: self.len,
            images,
            numbers,
            permutations,
            digit_images,
        })
    }
}

/// Returns the last four decimal digits of `number`, most significant first, with leading
/// zeros: `digits_most_significant_first(507) == [0, 5, 0, 7]`. Digits above the fourth, which
/// numbers from the generator never have, are dropped.
pub fn digits_most_significant_first(number: u32) -> [usize; DIGITS_PER_NUMBER] {
    let mut digits = [0; DIGITS_PER_NUMBER];
    let mut rest = number as usize;
    for digit in digits.iter_mut().rev() {
        *digit = rest % 10;
        rest /= 10;
    }
    digits
}

/// Computes the permutation that sorts `values` in descending order, equal values keeping
/// their order: `values[result[0]] >= values[result[1]] >= …`.
///
/// This is the target of a sorting relaxation: row `i` of the true permutation matrix `P` has
/// its one at column `result[i]`, so that `P · values` is `values` sorted in descending order.
pub fn descending_permutation<T: Ord>(values: &[T]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // sort_by is stable, so ties stay in increasing index order.
    order.sort_by(|&a, &b| values[b].cmp(&values[a]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_of_numbers() {
        assert_eq!(digits_most_significant_first(0), [0, 0, 0, 0]);
        assert_eq!(digits_most_significant_first(507), [0, 5, 0, 7]);
        assert_eq!(digits_most_significant_first(9999), [9, 9, 9, 9]);
        assert_eq!(digits_most_significant_first(1234), [1, 2, 3, 4]);
        assert_eq!(digits_most_significant_first(51234), [1, 2, 3, 4]);
    }

    #[test]
    fn descending_permutation_is_stable() {
        assert_eq!(descending_permutation(&[5, 9, 5, 1]), vec![1, 0, 2, 3]);
        assert_eq!(descending_permutation(&[3, 3, 3]), vec![0, 1, 2]);
        assert_eq!(descending_permutation::<u32>(&[]), Vec::<usize>::new());
        assert_eq!(descending_permutation(&[1, 2, 3, 4]), vec![3, 2, 1, 0]);
    }
}
