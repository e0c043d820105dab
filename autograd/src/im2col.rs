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

    /// The range of output columns `ox` whose input column `ox·s + j − pW` lies inside the
    /// image, for kernel column `j`.
    fn valid_out_cols(&self, j: usize) -> (usize, usize) {
        valid_range(j, self.pad_w, self.stride, self.width, self.out_w)
    }

    fn valid_out_rows(&self, i: usize) -> (usize, usize) {
        valid_range(i, self.pad_h, self.stride, self.height, self.out_h)
    }
}

/// The half-open range of outputs `o` in `0..out` with `0 ≤ o·s + k − pad < len`.
fn valid_range(k: usize, pad: usize, stride: usize, len: usize, out: usize) -> (usize, usize) {
    // o·s ≥ pad − k  ⇔  o ≥ ceil((pad − k) / s)
    let start = if pad > k {
        (pad - k).div_ceil(stride)
    } else {
        0
    };
    // o·s + k − pad ≤ len − 1  ⇔  o ≤ (len − 1 + pad − k) / s
    let end = if len + pad > k {
        ((len - 1 + pad - k) / stride + 1).min(out)
    } else {
        0
    };
    (start.min(end), end)
}

/// Fills `cols` (`K × P`, row-major) from one image `x` (`C × H × W`).
pub(crate) fn im2col<T: Float>(g: &ConvGeometry, x: &[T], cols: &mut [T]) {
    debug_assert_eq!(x.len(), g.image_len());
    debug_assert_eq!(cols.len(), g.patch_len() * g.out_pixels());
    let p = g.out_pixels();
    let mut rows = cols.chunks_exact_mut(p);
    for c in 0..g.channels {
        let plane = &x[c * g.height * g.width..(c + 1) * g.height * g.width];
        for i in 0..g.kernel_h {
            let (oy_start, oy_end) = g.valid_out_rows(i);
            for j in 0..g.kernel_w {
                let row = rows.next().expect("K rows");
                let (ox_start, ox_end) = g.valid_out_cols(j);
                for oy in 0..g.out_h {
                    let out_row = &mut row[oy * g.out_w..(oy + 1) * g.out_w];
                    if oy < oy_start || oy >= oy_end || ox_start >= ox_end {
                        out_row.fill(T::zero());
                        continue;
                    }
                    let iy = oy * g.stride + i - g.pad_h;
                    let src = &plane[iy * g.width..(iy + 1) * g.width];
                    out_row[..ox_start].fill(T::zero());
                    out_row[ox_end..].fill(T::zero());
                    let ix0 = ox_start * g.stride + j - g.pad_w;
                    if g.stride == 1 {
                        let n = ox_end - ox_start;
                        out_row[ox_start..ox_end].copy_from_slice(&src[ix0..ix0 + n]);
                    } else {
                        for (k, o) in out_row[ox_start..ox_end].iter_mut().enumerate() {
                            *o = src[ix0 + k * g.stride];
                        }
                    }
                }
            }
        }
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

/// [`im2row`] for kernels `KW` wide, or of any width read from `g` when `KW` is 0.
fn im2row_kw<T: Float, const KW: usize>(g: &ConvGeometry, x: &[T], rows: &mut [T]) {
    debug_assert_eq!(x.len(), g.image_len());
    debug_assert_eq!(rows.len(), g.patch_len() * g.out_pixels());
    let kw = if KW == 0 { g.kernel_w } else { KW };
    let k = g.patch_len();
    for oy in 0..g.out_h {
        for (ox, row) in rows[oy * g.out_w * k..][..g.out_w * k]
            .chunks_exact_mut(k)
            .enumerate()
        {
            // Kernel columns j with 0 ≤ ox·s + j − pW < W.
            let x0 = ox * g.stride;
            let j_end = (g.width + g.pad_w).saturating_sub(x0).min(kw);
            let j_start = g.pad_w.saturating_sub(x0).min(j_end);
            for (c, patch) in row.chunks_exact_mut(g.kernel_h * kw).enumerate() {
                let plane = &x[c * g.height * g.width..][..g.height * g.width];
                for (i, segment) in patch.chunks_exact_mut(kw).enumerate() {
                    let iy = (oy * g.stride + i).wrapping_sub(g.pad_h);
                    if iy >= g.height || j_start == j_end {
                        segment.iter_mut().for_each(|d| *d = T::zero());
                    } else if j_start == 0 && j_end == kw {
                        segment.copy_from_slice(&plane[iy * g.width + x0 - g.pad_w..][..kw]);
                    } else {
                        let src = &plane[iy * g.width + x0 + j_start - g.pad_w..];
                        for (j, d) in segment.iter_mut().enumerate() {
                            *d = if (j_start..j_end).contains(&j) {
                                src[j - j_start]
                            } else {
                                T::zero()
                            };
                        }
                    }
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
fn row2im_add_kw<T: Float, const KW: usize>(g: &ConvGeometry, rows: &[T], dx: &mut [T]) {
    debug_assert_eq!(dx.len(), g.image_len());
    debug_assert_eq!(rows.len(), g.patch_len() * g.out_pixels());
    let kw = if KW == 0 { g.kernel_w } else { KW };
    let k = g.patch_len();
    let plane_len = g.height * g.width;
    for oy in 0..g.out_h {
        for (ox, row) in rows[oy * g.out_w * k..][..g.out_w * k]
            .chunks_exact(k)
            .enumerate()
        {
            let x0 = ox * g.stride;
            let j_end = (g.width + g.pad_w).saturating_sub(x0).min(kw);
            let j_start = g.pad_w.saturating_sub(x0).min(j_end);
            for (c, patch) in row.chunks_exact(g.kernel_h * kw).enumerate() {
                let plane = &mut dx[c * plane_len..][..plane_len];
                for (i, segment) in patch.chunks_exact(kw).enumerate() {
                    let iy = (oy * g.stride + i).wrapping_sub(g.pad_h);
                    if iy >= g.height || j_start == j_end {
                        continue;
                    }
                    if j_start == 0 && j_end == kw {
                        let dst = &mut plane[iy * g.width + x0 - g.pad_w..][..kw];
                        for (d, &v) in dst.iter_mut().zip(segment) {
                            *d += v;
                        }
                    } else {
                        let dst =
                            &mut plane[iy * g.width + x0 + j_start - g.pad_w..][..j_end - j_start];
                        for (d, &v) in dst.iter_mut().zip(&segment[j_start..j_end]) {
                            *d += v;
                        }
                    }
                }
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
