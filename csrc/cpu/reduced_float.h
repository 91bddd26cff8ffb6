// Vectorised conversion of float16 / bfloat16 chunks to and from float32 (CPU).
//
// c10::Half and c10::BFloat16 convert one value at a time through code with branches
// (NaN checks, denormals), which stops `omp simd` loops from vectorising: a kernel that
// reads them directly runs several times slower than on float32. The CPU kernels instead
// convert each chunk (a few thousand values, in L1) into a float32 scratch buffer with
// these loops, work in float32, and convert the outputs back. Results are rounded as
// c10 rounds them (round to nearest even).
//  - bfloat16: bit operations (a shift one way; add the rounding bias and shift the other,
//    with a select for NaN), which the compiler vectorises with any SIMD ISA;
//  - float16: the F16C instructions where the CPU has them (checked once at run time;
//    every AVX2 CPU has them), else c10's scalar conversion.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FASTGAN_HAVE_F16C_PATH 1
#endif

namespace fastgan::cpu {

template <typename T>
constexpr bool is_reduced_float_v =
    std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>;

inline void to_float(const c10::BFloat16* src, float* dst, int64_t n) {
  const auto* s = reinterpret_cast<const uint16_t*>(src);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t bits = uint32_t(s[i]) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    dst[i] = f;
  }
}

inline void from_float(const float* src, c10::BFloat16* dst, int64_t n) {
  auto* d = reinterpret_cast<uint16_t*>(dst);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float f = src[i];
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    const uint32_t rounded = (bits + (((bits >> 16) & 1u) + 0x7FFFu)) >> 16;
    d[i] = f != f ? uint16_t(0x7FC0) : uint16_t(rounded);  // as c10::round_to_nearest_even
  }
}

#if defined(FASTGAN_HAVE_F16C_PATH)
__attribute__((target("avx,f16c"))) inline void half_to_float_f16c(const c10::Half* src,
                                                                    float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) dst[i] = float(src[i]);
}

__attribute__((target("avx,f16c"))) inline void float_to_half_f16c(const float* src,
                                                                    c10::Half* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i] = c10::Half(src[i]);
}

inline bool cpu_has_f16c() {
  static const bool has = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return has;
}
#endif

inline void to_float(const c10::Half* src, float* dst, int64_t n) {
#if defined(FASTGAN_HAVE_F16C_PATH)
  if (cpu_has_f16c()) return half_to_float_f16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]);
}

inline void from_float(const float* src, c10::Half* dst, int64_t n) {
#if defined(FASTGAN_HAVE_F16C_PATH)
  if (cpu_has_f16c()) return float_to_half_f16c(src, dst, n);
#endif
  for (int64_t i = 0; i < n; ++i) dst[i] = c10::Half(src[i]);
}

}  // namespace fastgan::cpu
