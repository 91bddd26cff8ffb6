// Host-side helpers shared by the CPU and CUDA SSIM ops (images and volumes): the SSIM
// constants of the parameters and the layout of the gradients returned.
#pragma once

#include <ATen/ATen.h>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"

namespace fastgan {

template <typename T>
SsimConsts<T> make_ssim_consts(const SsimParams& p) {
  const double c1 = (p.k1 * p.data_range) * (p.k1 * p.data_range);
  const double c2 = (p.k2 * p.data_range) * (p.k2 * p.data_range);
  return SsimConsts<T>{T(c1), T(c2), T(p.alpha), T((1.0 - p.alpha) / p.data_range)};
}

// The gradient outputs, laid out as x (channels_last(_3d) stays so).
inline at::Tensor empty_ssim_grad(const at::Tensor& x) {
  const auto cl = x.dim() == 5 ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::ChannelsLast;
  const bool is_cl = !x.is_contiguous() && x.is_contiguous(cl);
  return at::empty_like(x, is_cl ? cl : at::MemoryFormat::Contiguous);
}

}  // namespace fastgan
