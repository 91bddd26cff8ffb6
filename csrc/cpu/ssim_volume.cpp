// CPU kernels of the SSIM family on (N, C, D, H, W) volumes: the separable Gaussian along
// depth, height and width (pytorch-msssim's 3-D SSIM), every stat, padding, mask and
// gradient of the 2-D ops (cpu/ssim.cpp, which hands 5-D inputs to volume::run).
//
// A task is one depth band of one (n, c) volume (cpu/ssim_volume_kernel.h streams its
// slices); tasks run in parallel, bands fixed by the shape only and sums added in a fixed
// order, so the results are deterministic.
//
// Cost per output voxel, window 11 (a symmetric tap pair is one add and one FMA): the
// forward filters 4 moments x 3 axes x 11 taps = 132 multiply-adds, + ~25 for SSIM; the
// gradient of x adds 3 coefficient maps x 3 axes x 11 = 99 + ~30 per input voxel. Bytes:
// x and y read twice (8 B/voxel each time in float32), the gradient written once
// (4 B/voxel): ~5 flops per byte, so the bound is compute: ~0.5 Gflop for fwd + bwd of
// 2x1x64x128x128. Working memory per task: rings of win slices (4-5 moment maps of the
// output slice, 3-5 coefficient maps of the padded slice) and ~20 single slices, ~6 MB
// for 128x128 slices in float32; nothing volume-sized besides the outputs.
#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <vector>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"
#include "cpu/cpu_features.h"
#include "cpu/ssim_rows.h"
#include "cpu/ssim_volume.h"

namespace fastgan::cpu::volume {
namespace {

using namespace ssim_rows;

struct VolumeGeometry {
  int64_t n = 0, c = 0, d = 0, h = 0, w = 0;
  int win = 0, r = 0, pad = 0;
  int64_t padding = kPadValid;
  int64_t dp = 0, hp = 0, wp = 0;    // padded input
  int64_t dout = 0, ho = 0, wo = 0;  // map
  int64_t bands = 1;                 // depth bands per volume
};

VolumeGeometry make_geometry(const at::Tensor& x, const SsimParams& p) {
  VolumeGeometry g;
  g.n = x.size(0);
  g.c = x.size(1);
  g.d = x.size(2);
  g.h = x.size(3);
  g.w = x.size(4);
  g.win = int(p.win);
  g.r = int(p.win / 2);
  g.padding = p.padding;
  g.pad = p.padding == kPadValid ? 0 : g.r;
  g.dp = g.d + 2 * g.pad;
  g.hp = g.h + 2 * g.pad;
  g.wp = g.w + 2 * g.pad;
  g.dout = g.dp - 2 * g.r;
  g.ho = g.hp - 2 * g.r;
  g.wo = g.wp - 2 * g.r;
  g.bands = band_count(g.n * g.c, g.dout);
  return g;
}

template <typename T>
struct VolumeJob : JobCommon<T> {
  VolumeGeometry g;  // the map is (N, C, D', H', W'); reflect folds run along depth
};

#define FASTGAN_SSIM_CORE "cpu/ssim_volume_kernel.h"
#include "cpu/ssim_cores.h"

template <typename T>
std::vector<BandSums> run_job(const VolumeJob<T>& job) {
  const VolumeGeometry& g = job.g;
  const auto fn = band_fn<T>(g.win);
  return run_tasks(g.n * g.c, g.bands, [] { return 0; }, [&](int, int64_t plane, int64_t b) {
    return fn(job, plane, make_band(g.dout, g.dp, g.r, g.bands, b, job.grad));
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> run(const Request& req) {
  const at::Tensor& x = req.x;
  at::Tensor sums, weights, gx, gy, map;
  const at::Tensor gm = req.grad_map.defined() ? req.grad_map.to(x.scalar_type()) : at::Tensor();
  dispatch_opmath(x.scalar_type(), [&]<typename T>() {
    VolumeJob<T> job;
    job.g = make_geometry(x, req.p);
    init_job(job, x, req.y, req.p);
    job.mask = view_of(req.mask);
    job.grad_map = view_of(gm);
    job.factor = req.factor.defined() ? req.factor.const_data_ptr<double>() : nullptr;
    job.scale = req.grad_scale;
    if (req.grad) {
      set_grad_outputs(job, x, req.need_x, req.need_y, job.g.d, job.g.pad, job.g.padding, gx, gy);
    }
    if (req.write_map) {
      map = at::empty({job.g.n, job.g.c, job.g.dout, job.g.ho, job.g.wo},
                      x.options().memory_format(at::MemoryFormat::Contiguous));
      job.map = static_cast<char*>(map.mutable_data_ptr());
    }
    const bool backward_only = req.factor.defined() || req.grad_map.defined();
    if (req.grad && !(req.need_x || req.need_y) && backward_only) return;
    std::tie(sums, weights) = sums_tensors(run_job(job), x);
  });
  return {sums, weights, gx, gy, map};
}

}  // namespace fastgan::cpu::volume
