//! Runtime selection of wider SIMD instructions for the row kernels.

/// Runs `kernel`, compiled for AVX2 when the CPU has it.
///
/// The kernels are plain loops that the compiler vectorises. The baseline x86-64 target only
/// allows 128-bit SSE2, so on AVX2 machines the closure is inlined into a function compiled
/// with 256-bit instructions. No fused multiply-add is enabled, so both paths round every
/// operation the same way and give bit-identical results. Pass a closure marked
/// `#[inline(always)]` so that it is compiled inside the AVX2 function.
#[inline(always)]
pub(crate) fn dispatch<R>(kernel: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
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
