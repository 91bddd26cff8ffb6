// The pointwise error functions of the masked losses and their derivatives,
// shared by the CPU and CUDA kernels so the two cannot drift apart.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define FASTGAN_HD __host__ __device__ __forceinline__
#else
#define FASTGAN_HD inline
#endif

namespace fastgan {

// e(d) for d = x - y; eps2 = eps^2 (Charbonnier only).
template <int KIND, typename T>
FASTGAN_HD T pointwise_error(T d, T eps2) {
  if constexpr (KIND == 0) {
    return std::fabs(d);  // not a select: keeps CPU loops branch-free and vectorised
  } else if constexpr (KIND == 1) {
    return d * d;
  } else {
    return std::sqrt(d * d + eps2);
  }
}

// de/dd. L1 uses sign(d) with sign(0) = 0, as torch.abs does.
template <int KIND, typename T>
FASTGAN_HD T pointwise_error_grad(T d, T eps2) {
  if constexpr (KIND == 0) {
    return T(d > T(0)) - T(d < T(0));
  } else if constexpr (KIND == 1) {
    return T(2) * d;
  } else {
    return d / std::sqrt(d * d + eps2);
  }
}

}  // namespace fastgan
