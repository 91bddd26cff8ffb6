// The SSIM CUDA kernels on (N, C, D, H, W) volumes (cuda/ssim_volume.cu). The ops of
// cuda/ssim.cu hand 5-D inputs here after their checks, on x's device and stream.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "common/ssim_checks.h"

namespace fastgan::cuda::volume {

// Per-plane (sums, weights); fills *map (N, C, D', H', W') when map is not null.
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x, const at::Tensor& y,
                                           const at::Tensor& mask, const SsimParams& p,
                                           at::Tensor* map);

// Gradients for x and y (empty when not needed) of sum_planes factor * sums (factor: N*C
// opmath values) or, with grad_map defined, of sum grad_map * map.
std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& x, const at::Tensor& y,
                                            const at::Tensor& mask, const at::Tensor& grad_map,
                                            const at::Tensor& factor, const SsimParams& p,
                                            bool need_x, bool need_y);

}  // namespace fastgan::cuda::volume
