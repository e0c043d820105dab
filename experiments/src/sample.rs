//! The small MNIST sample compiled into the binary, and the rule that selects it.
//!
//! The sample lets the experiments and their tests run without the full data. It is selected
//! deterministically from the full MNIST files by [`select_sample`] and written by the
//! `make_mnist_sample` example; `experiments/data/mnist-sample/README.md` gives the attribution.

use crate::dataset::validation_len;
use crate::error::{Error, Result};
use crate::idx::{parse_images, parse_labels};
use crate::labeled_images::{LabeledImages, NUM_CLASSES};

/// Images of each digit taken from the training part (the first 55,000) of the training file.
pub const SAMPLE_TRAIN_PER_DIGIT: usize = 110;
/// Images of each digit taken from the validation part (the last 5,000) of the training file.
pub const SAMPLE_VALIDATION_PER_DIGIT: usize = 10;
/// Images of each digit taken from the test file.
pub const SAMPLE_TEST_PER_DIGIT: usize = 50;

/// The folder of the sample files, relative to the crate root.
pub const SAMPLE_DIR: &str = "data/mnist-sample";

const TRAIN_IMAGES_GZ: &[u8] = include_bytes!("../data/mnist-sample/train-images-idx3-ubyte.gz");
const TRAIN_LABELS_GZ: &[u8] = include_bytes!("../data/mnist-sample/train-labels-idx1-ubyte.gz");
const TEST_IMAGES_GZ: &[u8] = include_bytes!("../data/mnist-sample/t10k-images-idx3-ubyte.gz");
const TEST_LABELS_GZ: &[u8] = include_bytes!("../data/mnist-sample/t10k-labels-idx1-ubyte.gz");

/// Decodes the embedded sample into its training-file images (1,200) and test images (500).
///
/// # Errors
/// Only if the embedded files are corrupt.
pub fn embedded_sample() -> Result<(LabeledImages, LabeledImages)> {
    let train = LabeledImages::new(
        parse_images(
            TRAIN_IMAGES_GZ,
            "embedded sample train-images-idx3-ubyte.gz",
        )?,
        parse_labels(
            TRAIN_LABELS_GZ,
            "embedded sample train-labels-idx1-ubyte.gz",
        )?,
    )?;
    let test = LabeledImages::new(
        parse_images(TEST_IMAGES_GZ, "embedded sample t10k-images-idx3-ubyte.gz")?,
        parse_labels(TEST_LABELS_GZ, "embedded sample t10k-labels-idx1-ubyte.gz")?,
    )?;
    Ok((train, test))
}

/// Selects the sample from the full training and test files.
///
/// From the training file it takes, for each digit, the first [`SAMPLE_TRAIN_PER_DIGIT`] images
/// of that digit among the training part and the first [`SAMPLE_VALIDATION_PER_DIGIT`] among
/// the validation part (the last [`validation_len`] images). From the test file it takes the
/// first [`SAMPLE_TEST_PER_DIGIT`] images of each digit. Images keep their order in the file,
/// so splitting the sample by [`validation_len`] puts exactly the images from the validation
/// part into its validation set.
///
/// # Errors
/// [`Error::Dataset`] if a part has too few images of some digit.
pub fn select_sample(
    full_train: &LabeledImages,
    full_test: &LabeledImages,
) -> Result<(LabeledImages, LabeledImages)> {
    let boundary = full_train.len() - validation_len(full_train.len());
    let mut train_indices = first_per_label(full_train, 0..boundary, SAMPLE_TRAIN_PER_DIGIT)?;
    train_indices.extend(first_per_label(
        full_train,
        boundary..full_train.len(),
        SAMPLE_VALIDATION_PER_DIGIT,
    )?);
    let test_indices = first_per_label(full_test, 0..full_test.len(), SAMPLE_TEST_PER_DIGIT)?;
    Ok((
        full_train.select(&train_indices),
        full_test.select(&test_indices),
    ))
}

/// Returns, in increasing order, the indices of the first `per_label` images of each label
/// within `range`.
fn first_per_label(
    images: &LabeledImages,
    range: std::ops::Range<usize>,
    per_label: usize,
) -> Result<Vec<usize>> {
    let mut taken = [0usize; NUM_CLASSES];
    let mut indices = Vec::with_capacity(per_label * NUM_CLASSES);
    for index in range.clone() {
        let label = images.label(index) as usize;
        if taken[label] < per_label {
            taken[label] += 1;
            indices.push(index);
        }
    }
    if let Some(label) = taken.iter().position(|&count| count < per_label) {
        return Err(Error::dataset(format!(
            "images {range:?} contain only {} of label {label}, but the sample takes {per_label} \
             of each label",
            taken[label]
        )));
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::IdxImages;

    /// 1 × 1 images, one per label, whose pixel is the index modulo 256.
    fn images_with_labels(labels: Vec<u8>) -> LabeledImages {
        let pixels = (0..labels.len()).map(|i| (i % 256) as u8).collect();
        LabeledImages::new(IdxImages::new(labels.len(), 1, 1, pixels).unwrap(), labels).unwrap()
    }

    #[test]
    fn first_per_label_keeps_file_order() {
        let set = images_with_labels(vec![3, 1, 3, 3, 1, 0]);
        let error = first_per_label(&set, 0..6, 2).unwrap_err();
        assert!(error.to_string().contains("only 1 of label 0"), "{error}");

        let set = images_with_labels((0..40).map(|i| (i % 10) as u8).rev().collect());
        let picked = first_per_label(&set, 0..40, 2).unwrap();
        assert_eq!(picked, (0..20).collect::<Vec<_>>());
        let picked = first_per_label(&set, 5..40, 1).unwrap();
        assert_eq!(picked, (5..15).collect::<Vec<_>>());
    }

    #[test]
    fn embedded_sample_has_expected_composition() {
        let (train, test) = embedded_sample().unwrap();
        let train_per_digit = SAMPLE_TRAIN_PER_DIGIT + SAMPLE_VALIDATION_PER_DIGIT;
        assert_eq!(train.len(), NUM_CLASSES * train_per_digit);
        assert_eq!(test.len(), NUM_CLASSES * SAMPLE_TEST_PER_DIGIT);
        assert_eq!((train.rows(), train.cols()), (28, 28));
        assert_eq!((test.rows(), test.cols()), (28, 28));
        assert_eq!(train.label_counts(), [train_per_digit; NUM_CLASSES]);
        assert_eq!(test.label_counts(), [SAMPLE_TEST_PER_DIGIT; NUM_CLASSES]);

        let boundary = train.len() - validation_len(train.len());
        let validation = train.slice(boundary..train.len());
        assert_eq!(
            validation.label_counts(),
            [SAMPLE_VALIDATION_PER_DIGIT; NUM_CLASSES]
        );
    }

    #[test]
    fn embedded_sample_images_have_ink() {
        let (train, _) = embedded_sample().unwrap();
        for index in 0..train.len() {
            let ink: u32 = train.image(index).iter().map(|&p| u32::from(p)).sum();
            assert!(ink > 255 * 20, "image {index} is nearly blank");
        }
    }
}
