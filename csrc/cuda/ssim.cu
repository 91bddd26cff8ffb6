// CUDA kernels of the SSIM family; the semantics are those of csrc/cpu/ssim.cpp and the
// maths that of common/ssim_common.h.
//
// Two kernels over 32x32 tiles of one (image, channel) plane (16x16 for float64), each
// a chain of separable passes through shared memory:
//   forward  (sums, map):  load the tile's padded input + 2r halo (x, y) -> horizontal
//            Gaussian of x, y, x^2 + y^2, x y (, |x - y|) -> vertical Gaussian -> value;
//            per-tile sums of w * value and w (a fixed-order block reduction), then one
//            thread per plane adds its tiles in order (deterministic).
//   backward (one fused kernel, nothing image-sized stored between the passes): for a
//            tile of padded-input pixels q, load the input with a 4r halo, compute the
//            moments and the coefficients a_k = w dv/dmoment_k on the (tile + 2r) map
//            pixels that see q, then the transposed Gaussian (horizontal, vertical) and
//            d/dx = A_mx + 2 x A_v + y A_xy (+ sign(x - y) A_l1), d/dy likewise.
//            The moments of the halo are recomputed (about 1.7x the forward's filtering
//            work for a 32x32 tile and window 11) instead of storing 4-5 full-size maps.
// Bytes (S = N*C*H*W elements of b bytes): forward reads x, y (2S b, the halo from
// L2); backward reads x, y and writes grad_x and/or grad_y (3-4 S b). Extra memory: the
// gradients only, except reflect padding (a padded float32 gradient buffer per input,
// folded back into the image with a few ATen ops).
// Accumulation in float32 (float64 for float64). Launches on the current stream with a
// device guard; the window and the constants travel by value (CUDA-graph capturable).
// The kernels live in cuda/ssim_kernels.cuh; this file holds the host side.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"
#include "common/ssim_host.h"
#include "cuda/ssim_kernels.cuh"
#include "cuda/ssim_launch.h"
#include "cuda/ssim_volume.h"

namespace fastgan::cuda {
namespace {

using namespace ssim_kernels;
using namespace ssim_launch;

// Runs the forward kernel; returns (sums, weights) and fills map when defined.
std::tuple<at::Tensor, at::Tensor> run_forward(const char* op, const at::Tensor& x,
                                               const at::Tensor& y, const at::Tensor& mask,
                                               const Params& p, at::Tensor* map) {
  if (x.dim() == 5) return volume::forward(x, y, mask, p, map);
  const auto opmath = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t planes = x.size(0) * x.size(1);
  auto sums = at::empty({x.size(0), x.size(1)}, x.options().dtype(opmath));
  auto weights = at::empty_like(sums);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_cuda", [&] {
    using T = opmath_t<scalar_t>;
    constexpr int TILE = kTile<T>;
    const Geometry g = make_geometry(x, p, TILE, false);
    if (map != nullptr) {
      *map = at::empty({x.size(0), x.size(1), g.ho, g.wo},
                       x.options().memory_format(at::MemoryFormat::Contiguous));
    }
    auto part = at::empty({planes, g.tiles, 2}, x.options().dtype(opmath));
    const int r = int(p.win / 2);
    const int rh = TILE + 2 * r;
    dispatch_stat(p.stat, [&](auto sc) {
      constexpr int STAT = decltype(sc)::value;
      const size_t smem = sizeof(T) * (2 * rh * rh + kMoments<STAT> * rh * TILE);
      auto kernel = ssim_forward_kernel<scalar_t, STAT>;
      set_smem(kernel, smem);
      kernel<<<dim3(g.tiles, planes), kThreads, smem, stream>>>(
          view_of<scalar_t>(x), view_of<scalar_t>(y), view_of<scalar_t>(mask), g,
          make_window<T>(p), make_ssim_consts<T>(p), part.mutable_data_ptr<T>(),
          map != nullptr ? map->mutable_data_ptr<scalar_t>() : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    const int blocks = int((planes + kFinishThreads - 1) / kFinishThreads);
    ssim_finish_kernel<T><<<blocks, kFinishThreads, 0, stream>>>(
        part.const_data_ptr<T>(), planes, g.tiles, sums.mutable_data_ptr<T>(),
        weights.mutable_data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sums, weights};
}

std::tuple<at::Tensor, at::Tensor> run_backward(const char* op, const at::Tensor& x,
                                                const at::Tensor& y, const at::Tensor& mask,
                                                const at::Tensor& grad_map,
                                                const at::Tensor& factor, const Params& p,
                                                bool need_x, bool need_y) {
  if (x.dim() == 5) return volume::backward(x, y, mask, grad_map, factor, p, need_x, need_y);
  at::Tensor gx = need_x ? empty_ssim_grad(x) : at::empty({0}, x.options());
  at::Tensor gy = need_y ? empty_ssim_grad(x) : at::empty({0}, x.options());
  if (!(need_x || need_y)) return {gx, gy};
  const int64_t planes = x.size(0) * x.size(1);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const bool reflect = p.padding == kPadReflect;
  at::Tensor px, py;  // reflect: padded float gradients
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_cuda", [&] {
    using T = opmath_t<scalar_t>;
    constexpr int TILE = kTile<T>;
    const Geometry g = make_geometry(x, p, TILE, true);
    const GradOut<T> out = grad_outputs<T>(gx, gy, need_x, need_y, reflect, {planes, g.hp, g.wp}, px, py);
    const int r = int(p.win / 2);
    const int rh = TILE + 4 * r, ch = TILE + 2 * r;
    const T* f = factor.defined() ? factor.const_data_ptr<T>() : nullptr;
    dispatch_stat(p.stat, [&](auto sc) {
      constexpr int STAT = decltype(sc)::value;
      constexpr int NM = kMoments<STAT>;
      const size_t smem = sizeof(T) * (2 * rh * rh + NM * rh * ch + NM * ch * ch);
      auto kernel = ssim_backward_kernel<scalar_t, STAT>;
      set_smem(kernel, smem);
      kernel<<<dim3(g.tiles, planes), kThreads, smem, stream>>>(
          view_of<scalar_t>(x), view_of<scalar_t>(y), view_of<scalar_t>(mask),
          view_of<scalar_t>(grad_map), f, g, make_window<T>(p), make_ssim_consts<T>(p), out);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (reflect) {
    const int64_t pad = p.win / 2, h = x.size(2), w = x.size(3);
    if (need_x) gx.copy_(fold_reflect(px, h, w, pad).view(x.sizes()));
    if (need_y) gy.copy_(fold_reflect(py, h, w, pad).view(x.sizes()));
  }
  return {gx, gy};
}

std::tuple<at::Tensor, at::Tensor> ssim_forward(const at::Tensor& x, const at::Tensor& y,
                                                const std::optional<at::Tensor>& mask,
                                                int64_t window_size, double sigma, double k1,
                                                double k2, double data_range, int64_t padding,
                                                int64_t stat, double alpha) {
  constexpr const char* op = "ssim_forward";
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  check_ssim_inputs(op, x, y, p);
  const c10::cuda::CUDAGuard guard(x.device());
  return run_forward(op, x, y, checked_ssim_mask(op, x, mask), p, nullptr);
}

std::tuple<at::Tensor, at::Tensor> ssim_backward(const at::Tensor& grad, const at::Tensor& x,
                                                 const at::Tensor& y,
                                                 const std::optional<at::Tensor>& mask,
                                                 int64_t window_size, double sigma, double k1,
                                                 double k2, double data_range, int64_t padding,
                                                 int64_t stat, double alpha, bool need_x,
                                                 bool need_y) {
  constexpr const char* op = "ssim_backward";
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  check_ssim_inputs(op, x, y, p);
  check_plane_grad(op, grad, x);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto opmath = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor factor = grad.reshape({-1}).to(opmath).contiguous();
  return run_backward(op, x, y, checked_ssim_mask(op, x, mask), at::Tensor(), factor, p, need_x,
                      need_y);
}

at::Tensor ssim_map_forward(const at::Tensor& x, const at::Tensor& y, int64_t window_size,
                            double sigma, double k1, double k2, double data_range, int64_t padding,
                            int64_t stat, double alpha) {
  constexpr const char* op = "ssim_map_forward";
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  check_ssim_inputs(op, x, y, p);
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor map;
  run_forward(op, x, y, at::Tensor(), p, &map);
  return map;
}

std::tuple<at::Tensor, at::Tensor> ssim_map_backward(const at::Tensor& grad, const at::Tensor& x,
                                                     const at::Tensor& y, int64_t window_size,
                                                     double sigma, double k1, double k2,
                                                     double data_range, int64_t padding,
                                                     int64_t stat, double alpha, bool need_x,
                                                     bool need_y) {
  constexpr const char* op = "ssim_map_backward";
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  check_ssim_inputs(op, x, y, p);
  check_map_grad(op, grad, x, p);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor gm = grad.to(x.scalar_type());
  return run_backward(op, x, y, at::Tensor(), gm, at::Tensor(), p, need_x, need_y);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("ssim_forward", &ssim_forward);
  m.impl("ssim_backward", &ssim_backward);
  m.impl("ssim_map_forward", &ssim_map_forward);
  m.impl("ssim_map_backward", &ssim_map_backward);
}

}  // namespace fastgan::cuda
