// Streaming (non-temporal) stores of float blocks, for outputs written once and not read
// back soon: no read-for-ownership of their cache lines, and no eviction of the inputs the
// same pass still reads. GCC ignores `omp simd nontemporal(...)`, so the loops compute a
// block into an L1 buffer and store it with these (cpu/norm_nhwc_tiles.h streams 512-bit
// vectors itself). x86 with AVX only; elsewhere plain stores.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace fastgan::cpu {

#if defined(__AVX__)
constexpr bool kHaveStreamingStores = true;
#else
constexpr bool kHaveStreamingStores = false;
#endif

template <uintptr_t BYTES>
inline bool aligned_to(const void* p) { return (reinterpret_cast<uintptr_t>(p) & (BYTES - 1)) == 0; }
inline bool aligned32(const void* p) { return aligned_to<32>(p); }

// L floats from src to the 32-byte aligned dst (L a multiple of 8).
template <int L>
inline void stream_block(float* dst, const float* src) {
#if defined(__AVX__)
  static_assert(L % 8 == 0, "whole 256-bit vectors");
  for (int j = 0; j < L; j += 8) _mm256_stream_ps(dst + j, _mm256_load_ps(src + j));
#else
  std::memcpy(dst, src, sizeof(float) * L);
#endif
}

// Orders the streaming stores before the kernel returns (they are weakly ordered).
inline void stream_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

}  // namespace fastgan::cpu
