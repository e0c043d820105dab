//! The descending sort order of a row of scores, ties broken by increasing input index.

use autograd::Float;

/// Rows shorter than this use a comparison sort; longer ones a radix sort, which is several
/// times faster for long rows. Both give the same order.
const RADIX_MIN_LEN: usize = 2048;

/// Bits per radix digit, 2048 buckets per pass.
const DIGIT_BITS: u32 = 11;

/// Radix passes, over the top `PASSES · DIGIT_BITS = 33` bits of the keys (sign, exponent and
/// the top 21 bits of the mantissa of an `f64`). Keys that agree on those bits are rare in
/// real scores, and are ordered by a comparison sort of each such run.
const PASSES: u32 = 3;

/// The lowest key bit the radix passes look at.
const PREFIX_SHIFT: u32 = 64 - PASSES * DIGIT_BITS;

/// Returns the permutation that sorts `scores` descending, ties broken by increasing index:
/// `order[k]` is the input index of sorted position `k`.
///
/// The scores must be free of NaN (the ops reject non-finite scores before sorting). `-0.0`
/// and `0.0` tie.
pub(crate) fn descending_order<T: Float>(scores: &[T]) -> Vec<u32> {
    if scores.len() < RADIX_MIN_LEN {
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        // A stable sort keeps tied scores in index order.
        order.sort_by(|&a, &b| {
            scores[b as usize]
                .partial_cmp(&scores[a as usize])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        return order;
    }
    let keys: Vec<u64> = scores.iter().map(|s| descending_key(s.as_f64())).collect();
    radix_sort(keys)
}

/// Maps a float to an integer whose ascending order is the float's descending order.
///
/// In the IEEE 754 bit layout, flipping the sign bit of a non-negative float and every bit of
/// a negative one gives a key whose unsigned order is the float order. The final complement
/// reverses that order.
fn descending_key(x: f64) -> u64 {
    let x = if x == 0.0 { 0.0 } else { x };
    let bits = x.to_bits();
    let ascending = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    !ascending
}

/// Sorts indices by `keys` ascending, equal keys in index order: a stable
/// least-significant-digit radix sort on the top bits of the keys, then a stable comparison
/// sort of each run of keys that agree on those bits.
fn radix_sort(mut keys: Vec<u64>) -> Vec<u32> {
    let n = keys.len();
    let buckets = 1usize << DIGIT_BITS;
    let passes = PASSES as usize;
    let mask = (buckets - 1) as u64;
    let digit =
        |key: u64, p: usize| ((key >> (PREFIX_SHIFT + p as u32 * DIGIT_BITS)) & mask) as usize;

    let mut counts = vec![0usize; passes * buckets];
    for &key in &keys {
        for p in 0..passes {
            counts[p * buckets + digit(key, p)] += 1;
        }
    }

    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut keys_out = vec![0u64; n];
    let mut order_out = vec![0u32; n];
    for p in 0..passes {
        let count = &mut counts[p * buckets..(p + 1) * buckets];
        if count.contains(&n) {
            continue; // every key has the same digit here: the pass would not move anything
        }
        let mut start = 0;
        for c in count.iter_mut() {
            let len = *c;
            *c = start;
            start += len;
        }
        for i in 0..n {
            let d = digit(keys[i], p);
            let slot = count[d];
            count[d] += 1;
            keys_out[slot] = keys[i];
            order_out[slot] = order[i];
        }
        std::mem::swap(&mut keys, &mut keys_out);
        std::mem::swap(&mut order, &mut order_out);
    }

    // Runs that agree on the sorted bits are in index order; order them by the full key.
    let mut a = 0;
    while a < n {
        let prefix = keys[a] >> PREFIX_SHIFT;
        let mut b = a + 1;
        while b < n && keys[b] >> PREFIX_SHIFT == prefix {
            b += 1;
        }
        if b - a > 1 {
            let mut run: Vec<(u64, u32)> = keys[a..b]
                .iter()
                .copied()
                .zip(order[a..b].iter().copied())
                .collect();
            run.sort_by_key(|&(key, _)| key); // stable: equal keys stay in index order
            for (slot, (_, index)) in order[a..b].iter_mut().zip(run) {
                *slot = index;
            }
        }
        a = b;
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores with many ties, both zeros and both signs, long enough for the radix sort.
    fn awkward_scores(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => -0.0,
                2 => -((i % 13) as f64) * 1e-300,
                3 => (i % 11) as f64 * 1e5,
                4 => -1e300,
                _ => ((i * 7919) % 1000) as f64 * 0.37 - 185.0,
            })
            .collect()
    }

    #[test]
    fn radix_and_comparison_sort_agree() {
        let s = awkward_scores(5000);
        let radix = descending_order(&s);
        let mut reference: Vec<u32> = (0..s.len() as u32).collect();
        reference.sort_by(|&a, &b| s[b as usize].partial_cmp(&s[a as usize]).unwrap());
        assert_eq!(radix, reference);
    }

    #[test]
    fn scores_that_share_the_radix_prefix_sort_fully() {
        // Within each of the groups 1 + k·2⁻⁴⁰ and −1 + k·2⁻⁴⁰, values agree on the top 33 key
        // bits, so the radix passes leave each group in one run. Repeated k are ties, which
        // must stay in index order.
        let s: Vec<f64> = (0..4096)
            .map(|i| 1.0 + ((i * 37) % 1500) as f64 * 2f64.powi(-40) - (i % 3) as f64)
            .collect();
        let radix = descending_order(&s);
        let mut reference: Vec<u32> = (0..s.len() as u32).collect();
        reference.sort_by(|&a, &b| s[b as usize].partial_cmp(&s[a as usize]).unwrap());
        assert_eq!(radix, reference);
    }

    #[test]
    fn radix_sort_handles_shared_prefixes_and_subnormals() {
        let reference = |s: &[f64]| {
            let mut r: Vec<u32> = (0..s.len() as u32).collect();
            r.sort_by(|&a, &b| s[b as usize].partial_cmp(&s[a as usize]).unwrap());
            r
        };
        let mut state = 99u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 11
        };
        let prefix = 1.5f64.to_bits() & !((1u64 << PREFIX_SHIFT) - 1);
        for n in [RADIX_MIN_LEN, 4099] {
            // All keys share the radix prefix and differ only in the bits below it.
            let shared: Vec<f64> = (0..n)
                .map(|_| f64::from_bits(prefix | (next() % 5000)))
                .collect();
            // Subnormals of both signs, the smallest normals, and both zeros.
            let tiny: Vec<f64> = (0..n)
                .map(|_| {
                    let r = next();
                    let v = if r % 3 == 0 {
                        f64::from_bits(r % 1000)
                    } else {
                        f64::MIN_POSITIVE * ((r % 5) as f64)
                    };
                    if r & 8 == 0 {
                        v
                    } else {
                        -v
                    }
                })
                .collect();
            for s in [shared, tiny] {
                assert_eq!(descending_order(&s), reference(&s), "n = {n}");
                let s32: Vec<f32> = s.iter().map(|&x| x as f32).collect();
                let mut r: Vec<u32> = (0..n as u32).collect();
                r.sort_by(|&a, &b| s32[b as usize].partial_cmp(&s32[a as usize]).unwrap());
                assert_eq!(descending_order(&s32), r, "f32, n = {n}");
            }
        }
    }

    #[test]
    fn f32_keys_sort_like_f64() {
        let s: Vec<f32> = awkward_scores(3000).iter().map(|&x| x as f32).collect();
        let radix = descending_order(&s);
        let mut reference: Vec<u32> = (0..s.len() as u32).collect();
        reference.sort_by(|&a, &b| s[b as usize].partial_cmp(&s[a as usize]).unwrap());
        assert_eq!(radix, reference);
    }

    #[test]
    fn short_rows_break_ties_by_index() {
        assert_eq!(
            descending_order(&[1.0, 3.0, 1.0, 3.0, -0.0, 0.0]),
            vec![1, 3, 0, 2, 4, 5]
        );
    }
}
