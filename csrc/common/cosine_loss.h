// Cosine-similarity loss maths shared by the CPU and CUDA kernels.
// cos = x.y / max(|x| |y|, eps) over weighted vectors (w*x, w*y).
#pragma once

#include <algorithm>
#include <cmath>

#include "common/pointwise_loss.h"

namespace fastgan {

// Coefficients of d cos / d x = w^2 (a y - bx x) and d cos / d y = w^2 (a x - by y).
template <typename T>
struct CosineCoef {
  T cos, a, bx, by;
};

// Branch-free (so that CPU loops vectorise and GPU warps do not diverge), one sqrt and
// one division: 1/nx = ny / (nx ny). When the norm product is clamped at eps it no
// longer depends on x, y, so bx = by = 0.
template <typename T>
FASTGAN_HD CosineCoef<T> cosine_coef(T dot, T nx, T ny, T eps) {
  const T prod = nx * ny, eps2 = eps * eps;
  const T live = T(prod > eps2);  // 0 where the product is clamped: a factor, not a branch
  const T inv = T(1) / std::sqrt(std::max(prod, eps2));
  CosineCoef<T> r;
  r.cos = dot * inv;
  r.a = inv;
  const T cos_inv2 = live * r.cos * inv * inv;
  r.bx = cos_inv2 * ny;
  r.by = cos_inv2 * nx;
  return r;
}

}  // namespace fastgan
