//! The element types the sorting kernels run on, with a branch-free `exp` that vectorises.

use autograd::Float;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A float type the sorting operators accept: `f32` or `f64`.
///
/// Besides [`autograd::Float`] it provides [`SortFloat::fast_exp`], an exponential without
/// branches or library calls, so that the O(n²) softmax loops compile to SIMD code.
pub trait SortFloat: Float + sealed::Sealed {
    /// Computes `exp(x)` for `x ≤ 0` and moderate positive `x`.
    ///
    /// The argument is reduced to `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2`, `exp(r)` is a Taylor
    /// polynomial (degree 7 for `f32`, 12 for `f64`, relative error below 1e-7 and 2e-16), and
    /// `2^k` is built from the exponent bits. Arguments below the smallest normal result
    /// (about −87 for `f32`, −708 for `f64`) return exactly 0; arguments above 88 (`f32`) or
    /// 709 (`f64`) are clamped there. NaN is not supported: callers reject non-finite input.
    fn fast_exp(self) -> Self;
}

impl SortFloat for f32 {
    #[inline(always)]
    fn fast_exp(self) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        // ln 2 split into a part exact in f32 and a correction (Cody–Waite reduction).
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        // 1.5 · 2^23: adding it rounds to an integer, kept in the low mantissa bits.
        const MAGIC: f32 = 12_582_912.0;
        const LOW: f32 = -87.0;
        let x = self.clamp(LOW, 88.0);
        let t = x * LOG2E + MAGIC;
        let k = t - MAGIC;
        let r = x - k * LN2_HI - k * LN2_LO;
        let mut p = 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        let k_int = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
        let scale = f32::from_bits((k_int.wrapping_add(127) as u32) << 23);
        let y = p * scale;
        if self < LOW {
            0.0
        } else {
            y
        }
    }
}

impl SortFloat for f64 {
    #[inline(always)]
    fn fast_exp(self) -> f64 {
        const LOG2E: f64 = std::f64::consts::LOG2_E;
        const LN2_HI: f64 = 6.931_457_519_531_25e-1;
        const LN2_LO: f64 = 1.428_606_820_309_417_3e-6;
        // 1.5 · 2^52: adding it rounds to an integer, kept in the low mantissa bits.
        const MAGIC: f64 = 6_755_399_441_055_744.0;
        const LOW: f64 = -708.0;
        let x = self.clamp(LOW, 709.0);
        let t = x * LOG2E + MAGIC;
        let k = t - MAGIC;
        let r = x - k * LN2_HI - k * LN2_LO;
        const INV_FACT: [f64; 13] = [
            1.0,
            1.0,
            1.0 / 2.0,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 720.0,
            1.0 / 5040.0,
            1.0 / 40320.0,
            1.0 / 362_880.0,
            1.0 / 3_628_800.0,
            1.0 / 39_916_800.0,
            1.0 / 479_001_600.0,
        ];
        let mut p = INV_FACT[12];
        for c in INV_FACT[..12].iter().rev() {
            p = p * r + c;
        }
        let k_int = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
        let scale = f64::from_bits((k_int.wrapping_add(1023) as u64) << 52);
        let y = p * scale;
        if self < LOW {
            0.0
        } else {
            y
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SortFloat;

    #[test]
    fn fast_exp_matches_std_f64() {
        let mut x = -750.0f64;
        while x < 700.0 {
            let expected = x.exp();
            let got = x.fast_exp();
            if x < -708.0 {
                assert_eq!(got, 0.0, "x = {x}");
            } else {
                assert!(
                    ((got - expected) / expected).abs() < 4e-16,
                    "x = {x}: {got} vs {expected}"
                );
            }
            x += 0.173;
        }
    }

    #[test]
    fn fast_exp_matches_std_f32() {
        let mut x = -100.0f32;
        while x < 88.0 {
            let expected = x.exp();
            let got = x.fast_exp();
            if x < -87.0 {
                assert_eq!(got, 0.0, "x = {x}");
            } else {
                assert!(
                    ((got - expected) / expected).abs() < 3e-7,
                    "x = {x}: {got} vs {expected}"
                );
            }
            x += 0.0173;
        }
        assert_eq!(0.0f32.fast_exp(), 1.0);
        assert_eq!(0.0f64.fast_exp(), 1.0);
    }
}
