// Cosine-similarity loss maths shared by the CPU and CUDA kernels.
// cos = x.y / max(|x| |y|, eps) over weighted vectors (w*x, w*y).
#pragma once

#include <cmath>

#include "common/pointwise_loss.h"

namespace fastgan {

// Coefficients of d cos / d x = w^2 (a y - bx x) and d cos / d y = w^2 (a x - by y).
template <typename T>
struct CosineCoef {
  T cos, a, bx, by;
};

// Branch-free (so that CPU loops vectorise and GPU warps do not diverge): when the
// norm product is clamped at eps it no longer depends on x, y, so bx = by = 0.
template <typename T>
FASTGAN_HD CosineCoef<T> cosine_coef(T dot, T nx, T ny, T eps) {
  const T prod = nx * ny;
  const bool clamped = !(prod > eps * eps);
  const T inv = T(1) / std::sqrt(clamped ? eps * eps : prod);
  CosineCoef<T> r;
  r.cos = dot * inv;
  r.a = inv;
  r.bx = clamped ? T(0) : r.cos / nx;
  r.by = clamped ? T(0) : r.cos / ny;
  return r;
}

}  // namespace fastgan
