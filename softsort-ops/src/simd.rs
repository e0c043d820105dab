//! Runtime selection of wider SIMD instructions for the row kernels.

/// Runs `kernel`, compiled for AVX-512 or AVX2 when the CPU has them.
///
/// The kernels are plain loops that the compiler vectorises. The baseline x86-64 target only
/// allows 128-bit SSE2, so on newer machines the closure is inlined into a function compiled
/// with 512-bit (AVX-512F) or 256-bit (AVX2) instructions. Rust never fuses a multiplication
/// and an addition on its own, and the reductions keep eight accumulators whatever the vector
/// width, so every path rounds every operation the same way and gives bit-identical results.
/// Pass a closure marked `#[inline(always)]` so that it is compiled inside the wider function.
#[inline(always)]
pub(crate) fn dispatch<R>(kernel: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            #[target_feature(enable = "avx512f")]
            unsafe fn run_avx512<R>(kernel: impl FnOnce() -> R) -> R {
                kernel()
            }
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { run_avx512(kernel) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            unsafe fn run_avx2<R>(kernel: impl FnOnce() -> R) -> R {
                kernel()
            }
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { run_avx2(kernel) };
        }
    }
    kernel()
}
