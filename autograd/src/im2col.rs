//! The im2col lowering that turns a 2-D convolution into a matrix product, and its adjoint
//! col2im.
//!
//! For one image `x` of shape `[C, H, W]`, a `kH × kW` kernel, stride `s` and zero padding
//! `(pH, pW)`, the column matrix has `K = C·kH·kW` rows and `P = OH·OW` columns:
//!
//! `cols[(c, i, j), (oy, ox)] = x[c, oy·s + i − pH, ox·s + j − pW]`, or 0 outside the image.
//!
//! The convolution of the image with weights `W` of shape `[O, K]` is then `W · cols`, which
//! is already laid out as `[O, OH, OW]`.

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

/// Adds the adjoint of [`im2col`]: every `cols` entry is added to the image element it was
/// copied from. `dx` (`C × H × W`) is accumulated into, not overwritten.
pub(crate) fn col2im_add<T: Float>(g: &ConvGeometry, cols: &[T], dx: &mut [T]) {
    debug_assert_eq!(dx.len(), g.image_len());
    debug_assert_eq!(cols.len(), g.patch_len() * g.out_pixels());
    let p = g.out_pixels();
    let mut rows = cols.chunks_exact(p);
    for c in 0..g.channels {
        let plane = &mut dx[c * g.height * g.width..(c + 1) * g.height * g.width];
        for i in 0..g.kernel_h {
            let (oy_start, oy_end) = g.valid_out_rows(i);
            for j in 0..g.kernel_w {
                let row = rows.next().expect("K rows");
                let (ox_start, ox_end) = g.valid_out_cols(j);
                if ox_start >= ox_end {
                    continue;
                }
                for oy in oy_start..oy_end {
                    let iy = oy * g.stride + i - g.pad_h;
                    let dst = &mut plane[iy * g.width..(iy + 1) * g.width];
                    let src = &row[oy * g.out_w + ox_start..oy * g.out_w + ox_end];
                    let ix0 = ox_start * g.stride + j - g.pad_w;
                    for (k, &v) in src.iter().enumerate() {
                        dst[ix0 + k * g.stride] += v;
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
    fn col2im_is_adjoint_of_im2col() {
        // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for all x and c.
        let g = geometry(6, 5, 3, 2, 1);
        let x: Vec<f64> = (0..g.image_len())
            .map(|v| (v as f64 * 0.37).sin())
            .collect();
        let c: Vec<f64> = (0..g.patch_len() * g.out_pixels())
            .map(|v| (v as f64 * 0.11).cos())
            .collect();
        let mut cols = vec![0.0; c.len()];
        im2col(&g, &x, &mut cols);
        let lhs: f64 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
        let mut dx = vec![0.0; x.len()];
        col2im_add(&g, &c, &mut dx);
        let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12, "{lhs} vs {rhs}");
    }
}
