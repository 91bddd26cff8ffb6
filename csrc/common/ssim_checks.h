// Host-side parameters and input checks of the SSIM ops, shared by the CPU and CUDA
// implementations so that both reject the same inputs with the same messages.
#pragma once

#include <ATen/ATen.h>

#include "common/ssim_common.h"

namespace fastgan {

struct SsimParams {
  int64_t win, padding, stat;
  double sigma, k1, k2, data_range, alpha;
};

inline void check_ssim_inputs(const char* op, const at::Tensor& x, const at::Tensor& y,
                              const SsimParams& p) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(x.sizes() == y.sizes(), op, ": x and y must have the same shape, got ", x.sizes(),
              " and ", y.sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), op, ": x and y must have the same dtype");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be a floating tensor");
  TORCH_CHECK(x.device() == y.device(), op, ": x and y must be on the same device");
  TORCH_CHECK(p.win % 2 == 1 && p.win >= kMinWindow && p.win <= kMaxWindow, op,
              ": window_size must be odd, 3 to 15, got ", p.win);
  TORCH_CHECK(x.size(2) >= p.win && x.size(3) >= p.win, op, ": images of ", x.size(2), "x",
              x.size(3), " are smaller than the ", p.win, "x", p.win, " window");
  TORCH_CHECK(p.padding >= kPadValid && p.padding <= kPadReflect, op,
              ": padding code must be 0 (valid), 1 (zeros) or 2 (reflect), got ", p.padding);
  TORCH_CHECK(p.stat >= kStatSsim && p.stat <= kStatMix, op,
              ": stat code must be 0 (ssim), 1 (cs) or 2 (ssim + l1), got ", p.stat);
  TORCH_CHECK(p.sigma > 0 && p.data_range > 0 && p.k1 > 0 && p.k2 > 0, op,
              ": sigma, data_range, k1 and k2 must be > 0");
  TORCH_CHECK(x.numel() > 0, op, ": x has no elements");
}

}  // namespace fastgan
