// The SSIM ops on (N, C, D, H, W) volumes, CPU (cpu/ssim_volume.cpp). The ops of
// cpu/ssim.cpp hand 5-D inputs here after their checks; the contracts are theirs, with
// "plane" meaning one (image, channel) volume.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "common/ssim_checks.h"

namespace fastgan::cpu::volume {

// Inputs checked (check_ssim_inputs, checked_ssim_mask) by the caller.
struct Request {
  at::Tensor x, y, mask, grad_map;  // mask, grad_map: undefined when absent
  at::Tensor factor;                 // backward: per-plane upstream gradient (float64, N*C)
  SsimParams p{};
  bool grad = false, need_x = false, need_y = false, write_map = false;
  double grad_scale = 1.0;           // forward_with_grad: the upstream gradient assumed
};

// (sums, weights, grad_x, grad_y, map): the outputs not asked for are undefined, except the
// gradients, which are empty tensors when not needed (as the ops return them).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(const Request& req);

}  // namespace fastgan::cpu::volume
