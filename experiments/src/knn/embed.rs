//! Batched, gradient-free embedding of whole image sets.

use autograd::nn::Params;
use autograd::{Tape, Tensor};

use crate::error::{Error, Result};
use crate::knn_cnn::{EmbeddingCnn, EMBEDDING_DIM, IMAGE_SIDE};
use crate::labeled_images::LabeledImages;

/// Converts the images at `indices` to a `[B, 1, 28, 28]` tensor with pixels scaled to
/// `[0, 1]` (byte / 255).
///
/// # Errors
/// [`Error::InvalidArgument`] if the images are not 28 × 28 pixels or `indices` is empty.
///
/// # Panics
/// If an index is out of bounds.
pub fn images_to_tensor(images: &LabeledImages, indices: &[usize]) -> Result<Tensor<f32>> {
    if (images.rows(), images.cols()) != (IMAGE_SIDE, IMAGE_SIDE) || indices.is_empty() {
        return Err(Error::invalid(
            "images_to_tensor",
            "(image size, count)",
            format!("({} × {}, {})", images.rows(), images.cols(), indices.len()),
            format!("the embedding network takes at least one {IMAGE_SIDE} × {IMAGE_SIDE} image"),
        ));
    }
    let mut data = Vec::with_capacity(indices.len() * IMAGE_SIDE * IMAGE_SIDE);
    for &index in indices {
        data.extend(images.image(index).iter().map(|&p| f32::from(p) / 255.0));
    }
    Ok(Tensor::from_vec(
        data,
        [indices.len(), 1, IMAGE_SIDE, IMAGE_SIDE],
    )?)
}

/// Embeds every image of `images` with `model`, `batch_size` images at a time and without
/// recording gradients, giving `[images.len(), 500]`.
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty image set, images that are not 28 × 28 pixels or
/// a zero batch size.
pub fn embed_all(
    model: &EmbeddingCnn,
    images: &LabeledImages,
    batch_size: usize,
) -> Result<Tensor<f32>> {
    if batch_size == 0 {
        return Err(Error::invalid(
            "embed_all",
            "batch_size",
            0,
            "the batch size must be at least 1",
        ));
    }
    let mut out = Vec::with_capacity(images.len() * EMBEDDING_DIM);
    let indices: Vec<usize> = (0..images.len()).collect();
    for batch in indices.chunks(batch_size) {
        // A fresh tape per batch frees the activations of the previous one.
        let tape = Tape::new();
        let _no_grad = tape.no_grad();
        let params = Params::new(&tape, model);
        let x = tape.constant(images_to_tensor(images, batch)?);
        out.extend_from_slice(model.forward(&params, x)?.value().data());
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "embed_all",
            "images",
            "an empty set",
            "pass at least one image",
        ));
    }
    Ok(Tensor::from_vec(out, [images.len(), EMBEDDING_DIM])?)
}
