// AVX2 + FMA rows of the masked pointwise losses, float only: the sum of w * e(x - y)
// over one contiguous row and, with GRAD, gx = scale * w * e'(x - y).
//
// Why not the generic loop (cpu/masked_loss.cpp): GCC keeps its lane array of partial
// sums in memory, so every 32-float block reloads and stores its sums, a dependency
// chain through the stack that held the masked loops near 3 floats per cycle, below
// what L3 delivers. Here four vector sums stay in registers. Charbonnier takes rsqrt
// with one Newton step (relative error ~1e-7) instead of a square root and a division,
// each several cycles per vector on this class of CPU.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define FASTGAN_HAVE_AVX2_ROWS 1

#include <immintrin.h>

#include <cstdint>

#include "common/loss_common.h"
#include "common/pointwise_loss.h"

namespace fastgan::cpu::avx2 {

// Reads ahead: the line kPrefetchAhead floats (4 KB) past p. The hardware prefetchers
// stop at 4 KB page boundaries and follow a few streams only, while these loops walk up
// to ten rows at once (x, y, mask, per channel) in chunks of one to four pages each;
// prefetching a page ahead took the per-pixel cosine loss from 0.64 to 0.28 ms
// (16x3x256x256, this 2-core VM). Prefetches past the end of a buffer do not fault.
constexpr int64_t kPrefetchAhead = 1024;

inline void prefetch_ahead(const float* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchAhead), _MM_HINT_T0);
}

inline float horizontal_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// 1 / sqrt(v) for v > 0: the 12-bit estimate refined by one Newton step.
inline __m256 rsqrt_newton(__m256 v) {
  const __m256 r = _mm256_rsqrt_ps(v);
  const __m256 half_v_r = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.5f)), r);
  return _mm256_mul_ps(r, _mm256_fnmadd_ps(half_v_r, r, _mm256_set1_ps(1.5f)));
}

// A gradient vector out: streamed (p 32-byte aligned; the caller fences) or a plain store.
template <bool STREAM>
inline void store_row(float* p, __m256 v) {
  if constexpr (STREAM) {
    _mm256_stream_ps(p, v);
  } else {
    _mm256_storeu_ps(p, v);
  }
}

struct ErrorAndSlope {
  __m256 error, slope;  // e(d) and e'(d), as pointwise_error / pointwise_error_grad
};

template <int KIND>
inline ErrorAndSlope error_and_slope(__m256 d, __m256 eps2) {
  if constexpr (KIND == kL1) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 positive = _mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_GT_OQ), one);
    const __m256 negative = _mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_LT_OQ), one);
    return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), d), _mm256_sub_ps(positive, negative)};
  } else if constexpr (KIND == kSquared) {
    return {_mm256_mul_ps(d, d), _mm256_add_ps(d, d)};
  } else {
    const __m256 v = _mm256_fmadd_ps(d, d, eps2);  // >= eps^2 > 0
    const __m256 r = rsqrt_newton(v);
    return {_mm256_mul_ps(v, r), _mm256_mul_ps(d, r)};
  }
}

// W_STEP 1: a weight per element (w[i]); 0: one weight for the row (w[0]); -1: none.
// STREAM: gx is 32-byte aligned and goes out with streaming stores (no read-for-ownership
// of its lines); the caller fences.
template <int KIND, int W_STEP, bool GRAD, bool STREAM>
struct PointwiseRow {
  const float* x;
  const float* y;
  const float* w;
  float* gx;
  __m256 eps2, scale, row_weight;

  inline void block(int64_t i, __m256& acc) const {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
    const ErrorAndSlope e = error_and_slope<KIND>(d, eps2);
    if constexpr (W_STEP < 0) {
      acc = _mm256_add_ps(acc, e.error);
    } else {
      const __m256 wi = W_STEP == 1 ? _mm256_loadu_ps(w + i) : row_weight;
      acc = _mm256_fmadd_ps(wi, e.error, acc);
    }
    if constexpr (GRAD) {
      const __m256 factor = W_STEP < 0 ? scale
                            : _mm256_mul_ps(scale, W_STEP == 1 ? _mm256_loadu_ps(w + i) : row_weight);
      store_row<STREAM>(gx + i, _mm256_mul_ps(factor, e.slope));
    }
  }
};

template <int KIND, int W_STEP, bool GRAD, bool STREAM>
inline float pointwise_row(const float* x, const float* y, const float* w, float* gx, int64_t n,
                           float eps2, float scale) {
  const PointwiseRow<KIND, W_STEP, GRAD, STREAM> row{
      x, y, w, gx, _mm256_set1_ps(eps2), _mm256_set1_ps(scale),
      _mm256_set1_ps(W_STEP == 0 ? w[0] : 1.0f)};
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int64_t line = 0; line < 32; line += 16) {
      prefetch_ahead(x + i + line);
      prefetch_ahead(y + i + line);
      if (W_STEP == 1) prefetch_ahead(w + i + line);
    }
    row.block(i, a0);
    row.block(i + 8, a1);
    row.block(i + 16, a2);
    row.block(i + 24, a3);
  }
  for (; i + 8 <= n; i += 8) row.block(i, a0);
  float sum = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) {  // the last < 8 elements
    const float d = x[i] - y[i];
    const float wi = W_STEP == 1 ? w[i] : (W_STEP == 0 ? w[0] : 1.0f);
    sum += wi * pointwise_error<KIND>(d, eps2);
    if constexpr (GRAD) gx[i] = scale * wi * pointwise_error_grad<KIND>(d, eps2);
  }
  return sum;
}

}  // namespace fastgan::cpu::avx2

#endif
