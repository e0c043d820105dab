//! The im2col lowering that turns a 2-D convolution into a matrix product, its transpose
//! im2row, and the adjoint of im2row.
//!
//! For one image `x` of shape `[C, H, W]`, a `kH × kW` kernel, stride `s` and zero padding
//! `(pH, pW)`, the column matrix has `K = C·kH·kW` rows and `P = OH·OW` columns:
//!
//! `cols[(c, i, j), (oy, ox)] = x[c, oy·s + i − pH, ox·s + j − pW]`, or 0 outside the image.
//!
//! The convolution of the image with weights `W` of shape `[O, K]` is then `W · cols`, which
//! is already laid out as `[O, OH, OW]`. The backward pass uses the transposed layout
//! `rows = colsᵀ` (`P × K`), whose patch index is contiguous.

use crate::float::Float;

/// The sizes of one convolution of one image, with the output size resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvGeometry {
    /// `K = C·kH·kW`, the rows of the column matrix.
    pub fn patch_len(&self) -> usize {
        self.channels * self.kernel_h * self.kernel_w
    }

    /// `P = OH·OW`, the columns of the column matrix.
    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// `C·H·W`, the elements of one input image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Fills `cols` (`K × P`, row-major) from one image `x` (`C × H × W`).
///
/// Values are read from a padded copy of the image, so each run of `OW` values is one copy
/// with no bounds tests.
pub(crate) fn im2col<T: Float>(g: &ConvGeometry, x: &[T], cols: &mut [T]) {
    debug_assert_eq!(x.len(), g.image_len());
    debug_assert_eq!(cols.len(), g.patch_len() * g.out_pixels());
    let p = g.out_pixels();
    let (padded_h, padded_w) = padded_dims(g);
    let padded = pad_image(g, x);
    let mut rows = cols.chunks_exact_mut(p);
    for plane in padded.chunks_exact(padded_h * padded_w) {
        for i in 0..g.kernel_h {
            for j in 0..g.kernel_w {
                let row = rows.next().expect("K rows");
                for (oy, out_row) in row.chunks_exact_mut(g.out_w).enumerate() {
                    let start = (oy * g.stride + i) * padded_w + j;
                    if g.stride == 1 {
                        copy_short(&plane[start..start + g.out_w], out_row);
                    } else {
                        let src = plane[start..].iter().step_by(g.stride);
                        for (o, &v) in out_row.iter_mut().zip(src) {
                            *o = v;
                        }
                    }
                }
            }
        }
    }
}

/// Copies `src` into `dst` of the same length in blocks of eight, inline. For runs as short
/// as an output row (14 and 28 values in the paper CNN), a `memcpy` call per run measured
/// about as costly as the copying.
fn copy_short<T: Float>(src: &[T], dst: &mut [T]) {
    let mut dst_blocks = dst.chunks_exact_mut(8);
    let mut src_blocks = src.chunks_exact(8);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        let block: [T; 8] = s.try_into().expect("blocks of 8");
        d.copy_from_slice(&block);
    }
    for (d, &s) in dst_blocks
        .into_remainder()
        .iter_mut()
        .zip(src_blocks.remainder())
    {
        *d = s;
    }
}

/// Fills `rows` (`P × K`, row-major) from one image `x` (`C × H × W`): the transpose of
/// [`im2col`], one row per output pixel holding its `C·kH·kW` patch.
///
/// This layout makes the patch index contiguous, which is what a GEMM contracting over the
/// output pixels (the weight gradient) reads fastest.
pub(crate) fn im2row<T: Float>(g: &ConvGeometry, x: &[T], rows: &mut [T]) {
    // Common kernel widths get a copy of known length per segment, which compiles to a few
    // moves instead of a call to memcpy.
    match g.kernel_w {
        3 => im2row_kw::<T, 3>(g, x, rows),
        5 => im2row_kw::<T, 5>(g, x, rows),
        _ => im2row_kw::<T, 0>(g, x, rows),
    }
}

/// Returns the (rows, columns) of one image plane with its zero padding added.
fn padded_dims(g: &ConvGeometry) -> (usize, usize) {
    (g.height + 2 * g.pad_h, g.width + 2 * g.pad_w)
}

/// Copies one image `x` (`C × H × W`) into a zeroed buffer with the padding of `g` around
/// each plane.
fn pad_image<T: Float>(g: &ConvGeometry, x: &[T]) -> Vec<T> {
    let (padded_h, padded_w) = padded_dims(g);
    let mut padded = vec![T::zero(); g.channels * padded_h * padded_w];
    for (c, plane) in x.chunks_exact(g.height * g.width).enumerate() {
        for (y, src) in plane.chunks_exact(g.width).enumerate() {
            let start = (c * padded_h + y + g.pad_h) * padded_w + g.pad_w;
            padded[start..start + g.width].copy_from_slice(src);
        }
    }
    padded
}

/// [`im2row`] for kernels `KW` wide, or of any width read from `g` when `KW` is 0.
///
/// Patches are read from a padded copy of the image, so every kernel row is one contiguous
/// copy with no bounds tests.
fn im2row_kw<T: Float, const KW: usize>(g: &ConvGeometry, x: &[T], rows: &mut [T]) {
    debug_assert_eq!(x.len(), g.image_len());
    debug_assert_eq!(rows.len(), g.patch_len() * g.out_pixels());
    let kw = if KW == 0 { g.kernel_w } else { KW };
    let k = g.patch_len();
    let (padded_h, padded_w) = padded_dims(g);
    let padded = pad_image(g, x);
    for oy in 0..g.out_h {
        for (ox, row) in rows[oy * g.out_w * k..][..g.out_w * k]
            .chunks_exact_mut(k)
            .enumerate()
        {
            let x0 = ox * g.stride;
            for (c, patch) in row.chunks_exact_mut(g.kernel_h * kw).enumerate() {
                let plane = &padded[c * padded_h * padded_w..][..padded_h * padded_w];
                for (i, segment) in patch.chunks_exact_mut(kw).enumerate() {
                    let start = (oy * g.stride + i) * padded_w + x0;
                    segment.copy_from_slice(&plane[start..start + kw]);
                }
            }
        }
    }
}

/// Adds the adjoint of [`im2row`]: every `rows` entry is added to the image element it was
/// copied from. `dx` (`C × H × W`) is accumulated into, not overwritten.
pub(crate) fn row2im_add<T: Float>(g: &ConvGeometry, rows: &[T], dx: &mut [T]) {
    match g.kernel_w {
        3 => row2im_add_kw::<T, 3>(g, rows, dx),
        5 => row2im_add_kw::<T, 5>(g, rows, dx),
        _ => row2im_add_kw::<T, 0>(g, rows, dx),
    }
}

/// [`row2im_add`] for kernels `KW` wide, or of any width read from `g` when `KW` is 0.
///
/// The sums go to a padded image first, so every kernel row is one contiguous addition with
/// no bounds tests. The padding is dropped at the end.
fn row2im_add_kw<T: Float, const KW: usize>(g: &ConvGeometry, rows: &[T], dx: &mut [T]) {
    debug_assert_eq!(dx.len(), g.image_len());
    debug_assert_eq!(rows.len(), g.patch_len() * g.out_pixels());
    let kw = if KW == 0 { g.kernel_w } else { KW };
    let k = g.patch_len();
    let (padded_h, padded_w) = padded_dims(g);
    let plane_len = padded_h * padded_w;
    let mut padded = vec![T::zero(); g.channels * plane_len];
    for oy in 0..g.out_h {
        for (ox, row) in rows[oy * g.out_w * k..][..g.out_w * k]
            .chunks_exact(k)
            .enumerate()
        {
            let x0 = ox * g.stride;
            for (c, patch) in row.chunks_exact(g.kernel_h * kw).enumerate() {
                let plane = &mut padded[c * plane_len..][..plane_len];
                for (i, segment) in patch.chunks_exact(kw).enumerate() {
                    let start = (oy * g.stride + i) * padded_w + x0;
                    for (d, &v) in plane[start..start + kw].iter_mut().zip(segment) {
                        *d += v;
                    }
                }
            }
        }
    }
    for (c, plane) in dx.chunks_exact_mut(g.height * g.width).enumerate() {
        for (y, dst) in plane.chunks_exact_mut(g.width).enumerate() {
            let start = (c * padded_h + y + g.pad_h) * padded_w + g.pad_w;
            for (d, &v) in dst.iter_mut().zip(&padded[start..start + g.width]) {
                *d += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(h: usize, w: usize, k: usize, stride: usize, pad: usize) -> ConvGeometry {
        ConvGeometry {
            channels: 2,
            height: h,
            width: w,
            kernel_h: k,
            kernel_w: k,
            stride,
            pad_h: pad,
            pad_w: pad,
            out_h: (h + 2 * pad - k) / stride + 1,
            out_w: (w + 2 * pad - k) / stride + 1,
        }
    }

    /// The definition, element by element.
    fn im2col_naive(g: &ConvGeometry, x: &[f64]) -> Vec<f64> {
        let mut cols = Vec::new();
        for c in 0..g.channels {
            for i in 0..g.kernel_h {
                for j in 0..g.kernel_w {
                    for oy in 0..g.out_h {
                        for ox in 0..g.out_w {
                            let iy = (oy * g.stride + i) as isize - g.pad_h as isize;
                            let ix = (ox * g.stride + j) as isize - g.pad_w as isize;
                            let inside = iy >= 0
                                && ix >= 0
                                && (iy as usize) < g.height
                                && (ix as usize) < g.width;
                            cols.push(if inside {
                                x[(c * g.height + iy as usize) * g.width + ix as usize]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
        cols
    }

    #[test]
    fn im2col_matches_definition() {
        for &(h, w, k, stride, pad) in &[
            (5, 4, 3, 1, 1),
            (6, 7, 3, 2, 1),
            (4, 4, 5, 1, 2),
            (3, 5, 1, 3, 0),
            (7, 5, 3, 2, 3),
            (2, 2, 5, 1, 4),
        ] {
            let g = geometry(h, w, k, stride, pad);
            let x: Vec<f64> = (0..g.image_len()).map(|v| v as f64 + 1.0).collect();
            let mut cols = vec![f64::NAN; g.patch_len() * g.out_pixels()];
            im2col(&g, &x, &mut cols);
            assert_eq!(cols, im2col_naive(&g, &x), "geometry {g:?}");
        }
    }

    #[test]
    fn im2row_is_the_transpose_of_im2col() {
        for &(h, w, k, stride, pad) in &[
            (5, 4, 3, 1, 1),
            (6, 7, 3, 2, 1),
            (4, 4, 5, 1, 2),
            (3, 5, 1, 3, 0),
            (7, 5, 3, 2, 3),
            (2, 2, 5, 1, 4),
            (3, 3, 2, 1, 4),
        ] {
            let g = geometry(h, w, k, stride, pad);
            let x: Vec<f64> = (0..g.image_len()).map(|v| v as f64 + 1.0).collect();
            let cols = im2col_naive(&g, &x);
            let mut rows = vec![f64::NAN; cols.len()];
            im2row(&g, &x, &mut rows);
            let (kk, p) = (g.patch_len(), g.out_pixels());
            for r in 0..kk {
                for c in 0..p {
                    assert_eq!(rows[c * kk + r], cols[r * p + c], "geometry {g:?}");
                }
            }
        }
    }

    #[test]
    fn row2im_is_adjoint_of_im2row() {
        // ⟨im2row(x), r⟩ = ⟨x, row2im(r)⟩ for all x and r.
        for &(h, w, k, stride, pad) in &[
            (6, 5, 3, 2, 1),
            (4, 4, 5, 1, 2),
            (7, 5, 3, 2, 3),
            (3, 3, 2, 1, 4),
        ] {
            let g = geometry(h, w, k, stride, pad);
            let x: Vec<f64> = (0..g.image_len())
                .map(|v| (v as f64 * 0.37).sin())
                .collect();
            let r: Vec<f64> = (0..g.patch_len() * g.out_pixels())
                .map(|v| (v as f64 * 0.11).cos())
                .collect();
            let mut rows = vec![0.0; r.len()];
            im2row(&g, &x, &mut rows);
            let lhs: f64 = rows.iter().zip(&r).map(|(a, b)| a * b).sum();
            let mut dx = vec![0.0; x.len()];
            row2im_add(&g, &r, &mut dx);
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-12, "{lhs} vs {rhs}");
        }
    }
}
