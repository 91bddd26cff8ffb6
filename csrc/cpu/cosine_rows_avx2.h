// AVX2 + FMA loops of the cosine-similarity loss, float only (cpu/cosine_loss.cpp keeps
// the generic loops for the other types and for NHWC per-pixel work).
//
// - cosine_sums_row / cosine_grad_row: a contiguous row of the per-image loss (its three
//   weighted dot products; its gradients for constant coefficients). The generic loops
//   summed into one vector per product, a chain of dependent FMAs; here two vectors per
//   product stay in registers, and gradients stream out where the row is aligned.
// - cosine_pixels: the per-pixel loss over the channels of NCHW rows, eight pixels at a
//   time with their sums, coefficients, loss and gradients in registers: one pass over
//   x and y, no per-pixel arrays in memory. Its norm uses rsqrt with one Newton step
//   (relative error ~1e-7) in place of a square root and a division per vector.
// All read their rows ahead with software prefetches (see prefetch_ahead).
// Weights: w is the mask row (a weight per element of the row) or null (no mask).
#pragma once

#include "cpu/pointwise_rows_avx2.h"

#ifdef FASTGAN_HAVE_AVX2_ROWS

namespace fastgan::cpu::avx2 {

// x, y times the weight (when weighted).
template <bool WEIGHTED>
inline void weighted_pair(const float* x, const float* y, const float* w, int64_t i, __m256& xv,
                          __m256& yv) {
  xv = _mm256_loadu_ps(x + i);
  yv = _mm256_loadu_ps(y + i);
  if constexpr (WEIGHTED) {
    const __m256 wv = _mm256_loadu_ps(w + i);
    xv = _mm256_mul_ps(wv, xv);
    yv = _mm256_mul_ps(wv, yv);
  }
}

struct DotSums {
  __m256 dot = _mm256_setzero_ps(), nx = _mm256_setzero_ps(), ny = _mm256_setzero_ps();
  inline void add(__m256 xv, __m256 yv) {
    dot = _mm256_fmadd_ps(xv, yv, dot);
    nx = _mm256_fmadd_ps(xv, xv, nx);
    ny = _mm256_fmadd_ps(yv, yv, ny);
  }
};

// Adds {(wx).(wy), |wx|^2, |wy|^2} over n contiguous elements to dot, nx, ny.
template <bool WEIGHTED>
inline void cosine_sums_row(const float* x, const float* y, const float* w, int64_t n, float& dot,
                            float& nx, float& ny) {
  DotSums s0, s1;
  __m256 xv, yv;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    prefetch_ahead(x + i);
    prefetch_ahead(y + i);
    if (WEIGHTED) prefetch_ahead(w + i);
    weighted_pair<WEIGHTED>(x, y, w, i, xv, yv);
    s0.add(xv, yv);
    weighted_pair<WEIGHTED>(x, y, w, i + 8, xv, yv);
    s1.add(xv, yv);
  }
  for (; i + 8 <= n; i += 8) {
    weighted_pair<WEIGHTED>(x, y, w, i, xv, yv);
    s0.add(xv, yv);
  }
  float d = horizontal_sum(_mm256_add_ps(s0.dot, s1.dot));
  float a = horizontal_sum(_mm256_add_ps(s0.nx, s1.nx));
  float b = horizontal_sum(_mm256_add_ps(s0.ny, s1.ny));
  for (; i < n; ++i) {
    const float wi = WEIGHTED ? w[i] : 1.0f, xs = wi * x[i], ys = wi * y[i];
    d += xs * ys;
    a += xs * xs;
    b += ys * ys;
  }
  dot += d;
  nx += a;
  ny += b;
}

// gx = dcos w^2 (a y - bx x) and gy = dcos w^2 (a x - by y) over n contiguous elements
// (either pointer may be null); STREAM: both are 32-byte aligned, the caller fences.
template <bool WEIGHTED, bool STREAM>
inline void cosine_grad_row(const float* x, const float* y, const float* w, float* gx, float* gy,
                            int64_t n, float dcos, float a, float bx, float by) {
  const __m256 av = _mm256_set1_ps(a), bxv = _mm256_set1_ps(bx), byv = _mm256_set1_ps(by);
  const __m256 dv = _mm256_set1_ps(dcos);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (i % 16 == 0) {
      prefetch_ahead(x + i);
      prefetch_ahead(y + i);
      if (WEIGHTED) prefetch_ahead(w + i);
    }
    const __m256 xv = _mm256_loadu_ps(x + i), yv = _mm256_loadu_ps(y + i);
    __m256 f = dv;
    if constexpr (WEIGHTED) {
      const __m256 wv = _mm256_loadu_ps(w + i);
      f = _mm256_mul_ps(f, _mm256_mul_ps(wv, wv));
    }
    if (gx) store_row<STREAM>(gx + i, _mm256_mul_ps(f, _mm256_fmsub_ps(av, yv, _mm256_mul_ps(bxv, xv))));
    if (gy) store_row<STREAM>(gy + i, _mm256_mul_ps(f, _mm256_fmsub_ps(av, xv, _mm256_mul_ps(byv, yv))));
  }
  for (; i < n; ++i) {
    const float f = WEIGHTED ? dcos * w[i] * w[i] : dcos;
    if (gx) gx[i] = f * (a * y[i] - bx * x[i]);
    if (gy) gy[i] = f * (a * x[i] - by * y[i]);
  }
}

// cos, and the gradient coefficients a, bx, by of common/cosine_loss.h, for 8 pixels.
struct CosineCoefs {
  __m256 cos, a, bx, by;
};

inline CosineCoefs cosine_coefs(__m256 dot, __m256 nx, __m256 ny, __m256 eps2) {
  const __m256 prod = _mm256_mul_ps(nx, ny);
  const __m256 live = _mm256_cmp_ps(prod, eps2, _CMP_GT_OQ);  // not clamped at eps
  const __m256 inv = rsqrt_newton(_mm256_max_ps(prod, eps2));
  CosineCoefs r;
  r.cos = _mm256_mul_ps(dot, inv);
  r.a = inv;
  const __m256 cos_inv2 = _mm256_and_ps(live, _mm256_mul_ps(r.cos, _mm256_mul_ps(inv, inv)));
  r.bx = _mm256_mul_ps(cos_inv2, ny);
  r.by = _mm256_mul_ps(cos_inv2, nx);
  return r;
}

// MASK kNoMask, kPixelMask (w: one weight per pixel) or kFullMask (w: rows like x).
template <int MASK>
inline __m256 channel_weight(const float* w, int64_t ch, int64_t hw, int64_t k) {
  if constexpr (MASK == kPixelMask) {
    return _mm256_loadu_ps(w + k);
  } else {
    return _mm256_loadu_ps(w + ch * hw + k);
  }
}

// Per-pixel loss 1 - cos over the c channels of NCHW rows (channel stride hw), for pixels
// [0, n8) with n8 = n rounded down to 8 (the caller finishes the rest). With gx / gy (null
// when not wanted) also their gradients for d loss / d cos = dcos. Returns the loss sum;
// n8 through `done`. STREAM: gx / gy rows are 32-byte aligned (the caller fences).
template <int MASK, bool STREAM>
inline float cosine_pixels(const float* x, const float* y, const float* w, float* gx, float* gy,
                           int64_t c, int64_t hw, int64_t n, float dcos, float eps,
                           int64_t& done) {
  const __m256 eps2 = _mm256_set1_ps(eps * eps), dv = _mm256_set1_ps(dcos);
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 loss = _mm256_setzero_ps();
  const int64_t n8 = n / 8 * 8;
  for (int64_t k = 0; k < n8; k += 8) {
    DotSums s;
    for (int64_t ch = 0; ch < c; ++ch) {
      if (k % 16 == 0) {  // once per 64-byte line of each row
        prefetch_ahead(x + ch * hw + k);
        prefetch_ahead(y + ch * hw + k);
        if (MASK == kFullMask || (MASK == kPixelMask && ch == 0)) {
          prefetch_ahead(w + (MASK == kFullMask ? ch * hw : 0) + k);
        }
      }
      __m256 xv = _mm256_loadu_ps(x + ch * hw + k), yv = _mm256_loadu_ps(y + ch * hw + k);
      if constexpr (MASK != kNoMask) {
        const __m256 wv = channel_weight<MASK>(w, ch, hw, k);
        xv = _mm256_mul_ps(wv, xv);
        yv = _mm256_mul_ps(wv, yv);
      }
      s.add(xv, yv);
    }
    const CosineCoefs cf = cosine_coefs(s.dot, s.nx, s.ny, eps2);
    loss = _mm256_add_ps(loss, _mm256_sub_ps(one, cf.cos));
    if (gx == nullptr && gy == nullptr) continue;
    for (int64_t ch = 0; ch < c; ++ch) {  // the rows' lines are still in L1
      const __m256 xv = _mm256_loadu_ps(x + ch * hw + k), yv = _mm256_loadu_ps(y + ch * hw + k);
      __m256 f = dv;
      if constexpr (MASK != kNoMask) {
        const __m256 wv = channel_weight<MASK>(w, ch, hw, k);
        f = _mm256_mul_ps(f, _mm256_mul_ps(wv, wv));
      }
      if (gx) store_row<STREAM>(gx + ch * hw + k, _mm256_mul_ps(f, _mm256_fmsub_ps(cf.a, yv, _mm256_mul_ps(cf.bx, xv))));
      if (gy) store_row<STREAM>(gy + ch * hw + k, _mm256_mul_ps(f, _mm256_fmsub_ps(cf.a, xv, _mm256_mul_ps(cf.by, yv))));
    }
  }
  done = n8;
  return horizontal_sum(loss);
}

}  // namespace fastgan::cpu::avx2

#endif
