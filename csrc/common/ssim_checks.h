// Host-side parameters and input checks of the SSIM ops, shared by the CPU and CUDA
// implementations so that both reject the same inputs with the same messages.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "common/ssim_common.h"

namespace fastgan {

struct SsimParams {
  int64_t win, padding, stat;
  double sigma, k1, k2, data_range, alpha;
};

inline void check_ssim_inputs(const char* op, const at::Tensor& x, const at::Tensor& y,
                              const SsimParams& p) {
  TORCH_CHECK(x.dim() == 4 || x.dim() == 5, op,
              ": x must be 4-D (N, C, H, W) or 5-D (N, C, D, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(x.sizes() == y.sizes(), op, ": x and y must have the same shape, got ", x.sizes(),
              " and ", y.sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), op, ": x and y must have the same dtype");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be a floating tensor");
  TORCH_CHECK(x.device() == y.device(), op, ": x and y must be on the same device");
  TORCH_CHECK(p.win % 2 == 1 && p.win >= kMinWindow && p.win <= kMaxWindow, op,
              ": window_size must be odd, 3 to 15, got ", p.win);
  TORCH_CHECK(x.size(-2) >= p.win && x.size(-1) >= p.win, op, ": images of ", x.size(-2), "x",
              x.size(-1), " are smaller than the ", p.win, "x", p.win, " window");
  TORCH_CHECK(x.dim() == 4 || x.size(2) >= p.win, op, ": a depth of ", x.size(2),
              " is smaller than the window (", p.win, ")");
  TORCH_CHECK(p.padding >= kPadValid && p.padding <= kPadReflect, op,
              ": padding code must be 0 (valid), 1 (zeros) or 2 (reflect), got ", p.padding);
  TORCH_CHECK(p.stat >= kStatSsim && p.stat <= kStatMix, op,
              ": stat code must be 0 (ssim), 1 (cs) or 2 (ssim + l1), got ", p.stat);
  TORCH_CHECK(p.sigma > 0 && p.data_range > 0 && p.k1 > 0 && p.k2 > 0, op,
              ": sigma, data_range, k1 and k2 must be > 0");
  TORCH_CHECK(x.numel() > 0, op, ": x has no elements");
}

// The optional weight mask, checked against x: (N, 1, [D,] H, W) or x's shape, x's dtype
// and device. An undefined tensor when there is none.
inline at::Tensor checked_ssim_mask(const char* op, const at::Tensor& x,
                                    const std::optional<at::Tensor>& mask) {
  if (!mask.has_value() || !mask->defined()) return at::Tensor();
  const at::Tensor& m = *mask;
  bool ok = m.dim() == x.dim() && m.size(0) == x.size(0) &&
            (m.size(1) == 1 || m.size(1) == x.size(1));
  for (int64_t a = 2; ok && a < x.dim(); ++a) ok = m.size(a) == x.size(a);
  TORCH_CHECK(ok, op, ": mask must have shape (N, 1, ", x.dim() == 5 ? "D, " : "",
              "H, W) or x's shape ", x.sizes(), ", got ", m.sizes());
  TORCH_CHECK(m.scalar_type() == x.scalar_type(), op, ": mask must have x's dtype");
  TORCH_CHECK(m.device() == x.device(), op, ": mask must be on x's device");
  return m;
}

// The upstream gradient of ssim_backward: one value per (image, channel) plane.
inline void check_plane_grad(const char* op, const at::Tensor& grad, const at::Tensor& x) {
  TORCH_CHECK(grad.numel() == x.size(0) * x.size(1), op,
              ": grad must have N * C elements (one per plane), got ", grad.sizes());
  TORCH_CHECK(grad.device() == x.device(), op, ": grad must be on x's device");
}

// The upstream gradient of ssim_map_backward: the map's shape (2 * (window / 2) smaller in
// every spatial axis for valid padding).
inline void check_map_grad(const char* op, const at::Tensor& grad, const at::Tensor& x,
                           const SsimParams& p) {
  const int64_t shrink = p.padding == kPadValid ? 2 * (p.win / 2) : 0;
  std::vector<int64_t> want(x.sizes().begin(), x.sizes().end());
  for (size_t a = 2; a < want.size(); ++a) want[a] -= shrink;
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(want), op, ": grad must have the map's shape ",
              at::IntArrayRef(want), ", got ", grad.sizes());
  TORCH_CHECK(grad.device() == x.device(), op, ": grad must be on x's device");
}

}  // namespace fastgan
