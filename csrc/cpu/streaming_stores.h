// Helpers for streaming (non-temporal) stores of outputs written once and not read back
// soon: no read-for-ownership of their cache lines, and no eviction of the inputs the same
// pass still reads. The loops issue the stores themselves (cpu/pointwise_rows_avx2.h,
// cpu/cosine_rows_avx2.h: 256-bit; cpu/norm_nhwc_tiles.h: 512-bit; GCC ignores
// `omp simd nontemporal(...)`); this header has the alignment test they need and the fence
// that orders the stores, which every parallel body issues once at its end (a fence per
// row had cost the loss kernels 0.1-0.2 ms a call).
#pragma once

#include <cstdint>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace fastgan::cpu {

template <uintptr_t BYTES>
inline bool aligned_to(const void* p) { return (reinterpret_cast<uintptr_t>(p) & (BYTES - 1)) == 0; }
inline bool aligned32(const void* p) { return aligned_to<32>(p); }

// Rows shorter than this (an NHWC pixel's few channels) are stored plainly: they stay in
// cache anyway, and the loops' per-row alignment tests would cost more than they save.
constexpr int64_t kMinStreamedRow = 256;

// Orders the streaming stores before the kernel returns (they are weakly ordered).
inline void stream_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

}  // namespace fastgan::cpu
