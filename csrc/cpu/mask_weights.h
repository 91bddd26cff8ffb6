// Per-image sums of the broadcast mask weights, and the [0, 1] check of every weight,
// in one pass over the mask (CPU). Doing the check here, where a kernel reads the mask
// anyway, costs nothing on top; a separate aminmax in Python cost more than the sum.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "common/loss_common.h"

namespace fastgan::cpu {

namespace mask_detail {

struct RangeSums {
  double sum = 0.0;
  double bad = 0.0;  // weights outside [0, 1], NaN included
};

template <typename scalar_t>
RangeSums sum_and_count_bad(const scalar_t* v, int64_t n) {
  using T = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  T s = 0, bad = 0;  // a float count: an integer one kept the loop scalar
#pragma omp simd reduction(+ : s, bad)
  for (int64_t i = 0; i < n; ++i) {
    const T w = T(v[i]);
    s += w;
    bad += (w >= T(0) && w <= T(1)) ? T(0) : T(1);
  }
  return {double(s), double(bad)};
}

}  // namespace mask_detail

// Sums per image (times C for a pixel mask, so they count broadcast elements); C*H*W
// each without a mask. Raises ValueError naming the op if a weight is outside [0, 1].
inline std::vector<double> mask_weight_sums(const char* op, const ImageBatch& b) {
  if (b.mask_mode == kNoMask) return std::vector<double>(b.n, double(b.c * b.hw));
  const int64_t per_image = b.mask_mode == kPixelMask ? b.hw : b.c * b.hw;
  constexpr int64_t kChunk = 16384;  // fixed: results do not depend on the thread count
  const int64_t tpi = (per_image + kChunk - 1) / kChunk;
  std::vector<mask_detail::RangeSums> partial(b.n * tpi);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.mask.scalar_type(), "mask_weights", [&] {
    const scalar_t* m = b.mask.const_data_ptr<scalar_t>();
    at::parallel_for(0, b.n * tpi, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t i0 = (t % tpi) * kChunk;
        partial[t] = mask_detail::sum_and_count_bad(m + (t / tpi) * per_image + i0,
                                                    std::min(kChunk, per_image - i0));
      }
    });
  });
  double bad = 0.0;
  const double factor = b.mask_mode == kPixelMask ? double(b.c) : 1.0;
  std::vector<double> out(b.n, 0.0);
  for (int64_t i = 0; i < b.n; ++i) {
    for (int64_t k = 0; k < tpi; ++k) {
      out[i] += partial[i * tpi + k].sum;
      bad += partial[i * tpi + k].bad;
    }
    out[i] *= factor;
  }
  if (bad > 0) {  // the error path: find the range for the message
    const auto m = b.mask.to(at::kDouble);
    TORCH_CHECK_VALUE(false, op, ": mask weights must lie in [0, 1], got values in [",
                      m.min().item<double>(), ", ", m.max().item<double>(), "] (", int64_t(bad),
                      " outside)");
  }
  return out;
}

}  // namespace fastgan::cpu
