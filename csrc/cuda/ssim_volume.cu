// Host side of the SSIM CUDA kernels on (N, C, D, H, W) volumes (device code in
// cuda/ssim_volume_kernels.cuh; semantics those of csrc/cpu/ssim_volume.cpp).
//
// Forward: one block per TILE x TILE tile of one map slice, looping over the window's
// depth taps (each a 2-D separable pass of one input slice through shared memory):
// win times the 2-D forward's filtering work per voxel, inputs re-read from L2.
// Backward: the same kernel stores the coefficient maps (4-5 opmath values per map
// voxel), then the gradient kernel runs the transposed filter over them. Bytes per input
// voxel (b bytes, opmath 4): forward 2b; backward 2b + 4 x 4 (coefficients written and
// read) + 2b + the gradients. Extra memory: the coefficients (4-5x the map in float32) and,
// for reflect padding, a padded float32 gradient per input, folded back with ATen ops.
// Launches on the current stream; the window and constants travel by value.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"
#include "common/ssim_host.h"
#include "cuda/ssim_kernels.cuh"
#include "cuda/ssim_launch.h"
#include "cuda/ssim_volume.h"
#include "cuda/ssim_volume_kernels.cuh"

namespace fastgan::cuda::volume {
namespace {

using namespace ssim_kernels;
using namespace ssim_launch;

int64_t depth_stride(const at::Tensor& t) { return t.defined() ? t.stride(2) : 0; }

Depth make_depth(const at::Tensor& x, const at::Tensor& y, const at::Tensor& mask,
                 const at::Tensor& grad_map, const Params& p) {
  Depth d{};
  const int r = int(p.win / 2);
  d.d = x.size(2);
  d.pad = p.padding == kPadValid ? 0 : r;
  d.dp = d.d + 2 * d.pad;
  d.dout = d.dp - 2 * r;
  d.sxd = x.stride(2);
  d.syd = y.stride(2);
  d.smd = depth_stride(mask);
  d.sgd = depth_stride(grad_map);
  return d;
}

// The gradient of padded volumes (P, DP, HP, WP) folded along depth (reflect) -> (P, D, HP, WP).
at::Tensor fold_reflect_depth(const at::Tensor& gp, int64_t d, int64_t pad) {
  using at::indexing::Slice;
  auto out = gp.index({Slice(), Slice(pad, pad + d)}).clone();
  out.index({Slice(), Slice(1, pad + 1)}).add_(gp.index({Slice(), Slice(0, pad)}).flip({1}));
  out.index({Slice(), Slice(d - 1 - pad, d - 1)})
      .add_(gp.index({Slice(), Slice(pad + d, at::indexing::None)}).flip({1}));
  return out;
}

// Launches the forward kernel over the map; COEF also stores the coefficient maps.
template <typename scalar_t, int STAT, bool COEF>
void launch_forward(const at::Tensor& x, const at::Tensor& y, const at::Tensor& mask,
                    const at::Tensor& grad_map, const at::Tensor& factor, const Params& p,
                    const Geometry& g, const Depth& dep, at::Tensor& part, scalar_t* map,
                    opmath_t<scalar_t>* coef) {
  using T = opmath_t<scalar_t>;
  constexpr int TILE = kTile<T>;
  const int rh = TILE + 2 * int(p.win / 2);
  const size_t smem = sizeof(T) * (2 * rh * rh + kMoments<STAT> * rh * TILE);
  auto kernel = ssim_volume_forward_kernel<scalar_t, STAT, COEF>;
  set_smem(kernel, smem);
  kernel<<<dim3(unsigned(g.tiles * dep.dout), unsigned(x.size(0) * x.size(1))), kThreads, smem,
           c10::cuda::getCurrentCUDAStream()>>>(
      view_of<scalar_t>(x), view_of<scalar_t>(y), view_of<scalar_t>(mask),
      view_of<scalar_t>(grad_map), factor.defined() ? factor.const_data_ptr<T>() : nullptr, g,
      dep, make_window<T>(p), make_ssim_consts<T>(p), part.mutable_data_ptr<T>(), map, coef);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x, const at::Tensor& y,
                                           const at::Tensor& mask, const Params& p,
                                           at::Tensor* map) {
  const auto opmath = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t planes = x.size(0) * x.size(1);
  auto sums = at::empty({x.size(0), x.size(1)}, x.options().dtype(opmath));
  auto weights = at::empty_like(sums);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_volume_cuda", [&] {
    using T = opmath_t<scalar_t>;
    const Geometry g = make_geometry(x, p, kTile<T>, false);
    const Depth dep = make_depth(x, y, mask, at::Tensor(), p);
    if (map != nullptr) {
      *map = at::empty({x.size(0), x.size(1), dep.dout, g.ho, g.wo},
                       x.options().memory_format(at::MemoryFormat::Contiguous));
    }
    auto part = at::empty({planes, dep.dout * g.tiles, 2}, x.options().dtype(opmath));
    scalar_t* mp = map != nullptr ? map->mutable_data_ptr<scalar_t>() : nullptr;
    dispatch_stat(p.stat, [&](auto sc) {
      launch_forward<scalar_t, decltype(sc)::value, false>(x, y, mask, at::Tensor(), at::Tensor(),
                                                           p, g, dep, part, mp, nullptr);
    });
    const int blocks = int((planes + kFinishThreads - 1) / kFinishThreads);
    ssim_finish_kernel<T><<<blocks, kFinishThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        part.const_data_ptr<T>(), planes, int(dep.dout * g.tiles), sums.mutable_data_ptr<T>(),
        weights.mutable_data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {sums, weights};
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& x, const at::Tensor& y,
                                            const at::Tensor& mask, const at::Tensor& grad_map,
                                            const at::Tensor& factor, const Params& p,
                                            bool need_x, bool need_y) {
  at::Tensor gx = need_x ? empty_ssim_grad(x) : at::empty({0}, x.options());
  at::Tensor gy = need_y ? empty_ssim_grad(x) : at::empty({0}, x.options());
  if (!(need_x || need_y)) return {gx, gy};
  const auto opmath = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const int64_t planes = x.size(0) * x.size(1);
  const bool reflect = p.padding == kPadReflect;
  at::Tensor px, py;  // reflect: padded float gradients
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ssim_volume_cuda", [&] {
    using T = opmath_t<scalar_t>;
    constexpr int TILE = kTile<T>;
    const Geometry gf = make_geometry(x, p, TILE, false);
    const Geometry gb = make_geometry(x, p, TILE, true);
    const Depth dep = make_depth(x, y, mask, grad_map, p);
    const GradOut<T> out = grad_outputs<T>(gx, gy, need_x, need_y, reflect,
                                           {planes, dep.dp, gb.hp, gb.wp}, px, py);
    const int64_t grad_sd = (need_x ? gx : gy).stride(2);
    auto part = at::empty({planes, dep.dout * gf.tiles, 2}, x.options().dtype(opmath));
    dispatch_stat(p.stat, [&](auto sc) {
      constexpr int STAT = decltype(sc)::value;
      constexpr int NM = kMoments<STAT>;
      auto coef = at::empty({planes * dep.dout, NM, gf.ho, gf.wo}, x.options().dtype(opmath));
      launch_forward<scalar_t, STAT, true>(x, y, mask, grad_map, factor, p, gf, dep, part,
                                           nullptr, coef.mutable_data_ptr<T>());
      const int ch = TILE + 2 * int(p.win / 2);
      const size_t smem = sizeof(T) * (NM * ch * ch + NM * ch * TILE);
      auto kernel = ssim_volume_grad_kernel<scalar_t, STAT>;
      set_smem(kernel, smem);
      kernel<<<dim3(unsigned(gb.tiles * dep.dp), unsigned(planes)), kThreads, smem,
               c10::cuda::getCurrentCUDAStream()>>>(
          coef.const_data_ptr<T>(), view_of<scalar_t>(x), view_of<scalar_t>(y), gb, dep,
          make_window<T>(p), out, grad_sd);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  if (reflect) {
    const int64_t pad = p.win / 2, d = x.size(2), h = x.size(3), w = x.size(4);
    auto fold = [&](const at::Tensor& gp) {
      auto slices = fold_reflect_depth(gp, d, pad).reshape({-1, h + 2 * pad, w + 2 * pad});
      return fold_reflect(slices, h, w, pad).view(x.sizes());
    };
    if (need_x) gx.copy_(fold(px));
    if (need_y) gy.copy_(fold(py));
  }
  return {gx, gy};
}

}  // namespace fastgan::cuda::volume
