// Host-side launch helpers of the SSIM CUDA kernels, shared by the ops on images
// (cuda/ssim.cu) and on volumes (cuda/ssim_volume.cu): views, geometry, window, the stat
// dispatch, shared-memory limits and the reflect fold of a padded gradient.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"
#include "cuda/ssim_kernels.cuh"

namespace fastgan::cuda::ssim_launch {

using namespace ssim_kernels;
using Params = SsimParams;  // checked by check_ssim_inputs (common/ssim_checks.h)

// A (N, C, [D,] H, W) tensor as a 2-D view of its (n, c) planes (slice 0 for volumes:
// callers move p along depth).
template <typename scalar_t>
View<scalar_t> view_of(const at::Tensor& t) {
  View<scalar_t> v;
  if (!t.defined()) return v;
  const int64_t k = t.dim();
  v.p = t.const_data_ptr<scalar_t>();
  v.sn = t.stride(0);
  v.sc = t.size(1) == 1 ? 0 : t.stride(1);
  v.sh = t.stride(k - 2);
  v.sw = t.stride(k - 1);
  return v;
}

inline Geometry make_geometry(const at::Tensor& x, const Params& p, int tile, bool padded_grid) {
  Geometry g{};
  g.c = x.size(1);
  g.h = x.size(-2);
  g.w = x.size(-1);
  const int r = int(p.win / 2);
  g.padding = int(p.padding);
  g.pad = p.padding == kPadValid ? 0 : r;
  g.hp = g.h + 2 * g.pad;
  g.wp = g.w + 2 * g.pad;
  g.ho = g.hp - 2 * r;
  g.wo = g.wp - 2 * r;
  const int64_t rows = padded_grid ? g.hp : g.ho, cols = padded_grid ? g.wp : g.wo;
  const int64_t tiles_w = (cols + tile - 1) / tile, tiles_h = (rows + tile - 1) / tile;
  TORCH_CHECK(tiles_w * tiles_h <= std::numeric_limits<int32_t>::max(), "ssim: image too large");
  TORCH_CHECK(x.size(0) * x.size(1) <= 65535, "ssim: N * C must be at most 65535 on CUDA, got ",
              x.size(0) * x.size(1));
  g.tiles_w = int(tiles_w);
  g.tiles = int(tiles_w * tiles_h);
  return g;
}

template <typename T>
Window<T> make_window(const Params& p) {
  Window<T> w{};
  double g[kMaxWindow];
  ssim_window(int(p.win), p.sigma, g);
  for (int i = 0; i < p.win; ++i) w.g[i] = T(g[i]);
  w.win = int(p.win);
  w.r = int(p.win / 2);
  return w;
}

template <typename Fn>
void dispatch_stat(int64_t stat, Fn&& fn) {
  switch (stat) {
    case kStatSsim: fn(std::integral_constant<int, kStatSsim>{}); break;
    case kStatCs: fn(std::integral_constant<int, kStatCs>{}); break;
    default: fn(std::integral_constant<int, kStatMix>{}); break;
  }
}

// Dynamic shared memory of a kernel, raising the 48 KiB default where needed.
template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        int(bytes)));
  }
}

// Where a backward kernel writes: the image gradients gx / gy (those needed; in-plane
// strides), or for reflect padding padded opmath buffers px / py of shape `padded`,
// allocated here and folded back into the image afterwards.
template <typename T>
GradOut<T> grad_outputs(const at::Tensor& gx, const at::Tensor& gy, bool need_x, bool need_y,
                        bool reflect, at::IntArrayRef padded, at::Tensor& px, at::Tensor& py) {
  GradOut<T> out;
  const at::Tensor& ref = need_x ? gx : gy;
  out.sn = ref.stride(0);
  out.sc = ref.stride(1);
  out.sh = ref.stride(-2);
  out.sw = ref.stride(-1);
  if (reflect) {
    const auto opts = ref.options().dtype(c10::CppTypeToScalarType<T>::value);
    if (need_x) px = at::empty(padded, opts);
    if (need_y) py = at::empty(padded, opts);
  }
  const at::Tensor& ox = reflect ? px : gx;
  const at::Tensor& oy = reflect ? py : gy;
  out.gx = need_x ? ox.mutable_data_ptr() : nullptr;
  out.gy = need_y ? oy.mutable_data_ptr() : nullptr;
  return out;
}

// The gradient of the padded planes (P, HP, WP) folded back into the image (reflect).
inline at::Tensor fold_reflect(const at::Tensor& gp, int64_t h, int64_t w, int64_t pad) {
  using at::indexing::Slice;
  auto rows = gp.index({Slice(), Slice(pad, pad + h), Slice()}).clone();
  rows.index({Slice(), Slice(1, pad + 1), Slice()})
      .add_(gp.index({Slice(), Slice(0, pad), Slice()}).flip({1}));
  rows.index({Slice(), Slice(h - 1 - pad, h - 1), Slice()})
      .add_(gp.index({Slice(), Slice(pad + h, at::indexing::None), Slice()}).flip({1}));
  auto out = rows.index({Slice(), Slice(), Slice(pad, pad + w)}).clone();
  out.index({Slice(), Slice(), Slice(1, pad + 1)})
      .add_(rows.index({Slice(), Slice(), Slice(0, pad)}).flip({2}));
  out.index({Slice(), Slice(), Slice(w - 1 - pad, w - 1)})
      .add_(rows.index({Slice(), Slice(), Slice(pad + w, at::indexing::None)}).flip({2}));
  return out;
}

}  // namespace fastgan::cuda::ssim_launch
