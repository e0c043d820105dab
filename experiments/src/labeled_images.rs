//! Grayscale images paired with class labels.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::idx::{IdxImages, MAX_LABEL};

/// The number of classes of MNIST and Fashion-MNIST.
pub const NUM_CLASSES: usize = MAX_LABEL as usize + 1;

/// Grayscale images with one byte per pixel (0 = background, 255 = full ink), each with a label
/// in `0..=9`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabeledImages {
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl LabeledImages {
    /// Pairs an image stack with its labels.
    ///
    /// # Errors
    /// [`Error::Dataset`] if the counts differ, [`Error::InvalidArgument`] if a label exceeds 9.
    pub fn new(images: IdxImages, labels: Vec<u8>) -> Result<Self> {
        if images.count() != labels.len() {
            return Err(Error::dataset(format!(
                "the image file has {} images but the label file has {} labels; \
                 use the label file that belongs to the images",
                images.count(),
                labels.len()
            )));
        }
        if let Some(index) = labels.iter().position(|&label| label > MAX_LABEL) {
            return Err(Error::invalid(
                "LabeledImages::new",
                &format!("labels[{index}]"),
                labels[index],
                format!("labels must be 0..={MAX_LABEL}"),
            ));
        }
        let (_, rows, cols, pixels) = images.into_parts();
        Ok(LabeledImages {
            rows,
            cols,
            pixels,
            labels,
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The number of pixel rows of each image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of pixel columns of each image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The pixels of image `index`, row by row.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.pixels[index * size..(index + 1) * size]
    }

    /// The label of image `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn label(&self, index: usize) -> u8 {
        self.labels[index]
    }

    /// All labels, in image order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The indices of the images of each class: entry `d` lists, in increasing order, every `i`
    /// with `label(i) == d`.
    pub fn indices_by_label(&self) -> [Vec<usize>; NUM_CLASSES] {
        let mut by_label: [Vec<usize>; NUM_CLASSES] = Default::default();
        for (index, &label) in self.labels.iter().enumerate() {
            by_label[label as usize].push(index);
        }
        by_label
    }

    /// The number of images of each class.
    pub fn label_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }

    /// The images `range`, in order.
    ///
    /// # Panics
    /// If the range is out of bounds.
    pub fn slice(&self, range: Range<usize>) -> LabeledImages {
        let size = self.rows * self.cols;
        LabeledImages {
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[range.start * size..range.end * size].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }

    /// The images at `indices`, in the order given.
    ///
    /// # Panics
    /// If an index is out of bounds.
    pub fn select(&self, indices: &[usize]) -> LabeledImages {
        let mut pixels = Vec::with_capacity(indices.len() * self.rows * self.cols);
        for &index in indices {
            pixels.extend_from_slice(self.image(index));
        }
        LabeledImages {
            rows: self.rows,
            cols: self.cols,
            pixels,
            labels: indices.iter().map(|&index| self.labels[index]).collect(),
        }
    }

    /// Converts back into an image stack and its labels, for example to write IDX files.
    pub fn to_idx(&self) -> (IdxImages, Vec<u8>) {
        let images = IdxImages::new(self.len(), self.rows, self.cols, self.pixels.clone())
            .expect("the pixel count was checked on construction");
        (images, self.labels.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four 1 × 2 images whose pixels are `[10·i, 10·i + 1]`.
    fn four_images(labels: Vec<u8>) -> Result<LabeledImages> {
        let pixels = (0..4u8).flat_map(|i| [10 * i, 10 * i + 1]).collect();
        LabeledImages::new(IdxImages::new(4, 1, 2, pixels)?, labels)
    }

    #[test]
    fn count_mismatch_is_rejected() {
        let error = four_images(vec![1, 2, 3]).unwrap_err();
        assert!(error
            .to_string()
            .contains("4 images but the label file has 3 labels"));
    }

    #[test]
    fn label_above_nine_is_rejected() {
        let error = four_images(vec![1, 2, 3, 12]).unwrap_err();
        assert!(error.to_string().contains("labels[3] = 12"), "{error}");
    }

    #[test]
    fn indices_and_counts_by_label() {
        let set = four_images(vec![7, 2, 7, 0]).unwrap();
        let by_label = set.indices_by_label();
        assert_eq!(by_label[7], vec![0, 2]);
        assert_eq!(by_label[2], vec![1]);
        assert_eq!(by_label[0], vec![3]);
        assert!(by_label[5].is_empty());
        assert_eq!(set.label_counts(), [1, 0, 1, 0, 0, 0, 0, 2, 0, 0]);
    }

    #[test]
    fn slice_and_select_keep_pairs() {
        let set = four_images(vec![7, 2, 7, 0]).unwrap();
        let tail = set.slice(2..4);
        assert_eq!(tail.len(), 2);
        assert_eq!(tail.image(0), &[20, 21]);
        assert_eq!(tail.labels(), &[7, 0]);

        let picked = set.select(&[3, 0]);
        assert_eq!(picked.image(0), &[30, 31]);
        assert_eq!(picked.image(1), &[0, 1]);
        assert_eq!(picked.labels(), &[0, 7]);
    }

    #[test]
    fn to_idx_round_trips() {
        let set = four_images(vec![7, 2, 7, 0]).unwrap();
        let (images, labels) = set.to_idx();
        assert_eq!(LabeledImages::new(images, labels).unwrap(), set);
    }
}
