// CPU kernels of the SSIM family (SSIM, contrast-structure for MS-SSIM, SSIM + L1 mix).
//
// Ops (schemas in csrc/registration.cpp; maths in common/ssim_common.h):
//  - ssim_forward: per (image, channel) plane, sum_p w_p v_p and sum_p w_p over the map;
//  - ssim_backward: d/dx, d/dy of sum over planes of grad[n, c] * (sum_p w_p v_p);
//  - ssim_forward_with_grad: both in one sweep over the images, the gradients for
//    grad = grad_scale on every plane (training reads x and y once; the autograd
//    backward rescales the stored gradients per plane, or hands them over as they are);
//  - ssim_map_forward / ssim_map_backward: the per-pixel map and its vector-Jacobian product.
//
// One streaming pipeline (cpu/ssim_kernel.h, run_band) serves every op. A task is one
// row band of one (n, c) plane (whole planes when there are enough of them). Rows of the
// padded images stream through it once:
//   1. load padded row i of x and y (any strides and float dtype -> opmath) into a ring;
//   2. horizontal 1-D Gaussian of x, y, x^2 + y^2, x y (and |x - y|) -> ring;
//   3. output rows o = i - 2r, two at a time: vertical Gaussian of the four (five) moment
//      rows, the value per pixel (sums, map) and, for gradients, the coefficient rows
//      a_k = w dv/dmoment_k and their horizontal transposed Gaussian -> ring;
//   4. padded input rows q <= o are then complete: vertical transposed Gaussian, times
//      x, y as ssim_common.h says, written out (folded into the image for reflect).
// Nothing image-sized is stored between the steps: the working set is ~20 rings of
// win + 2 rows. FLOPs per map pixel, window 11 (the symmetric window halves the
// multiplies: a tap pair is one add and one FMA): forward 4 maps x 2 passes x 11 = 88
// + ~25 for SSIM; forward + gradient of x: 88 + 3 x 2 x 11 = 66 + ~45 more. Bytes: the
// forward reads x and y once (8 B/px in float32); with the gradient it also writes it
// (+4 B/px per input). Measured here: ~3 ns/px forward, ~5.5 ns/px forward + gradient
// per core (AVX-512), bound by the vertical passes' cache traffic and by DRAM.
//
// The core is compiled twice, with the build's flags and for AVX-512 (cpu/ssim_cores.h;
// picked at run time with __builtin_cpu_supports; FASTGAN_CPU_AVX512=0 forces the first).
// Bands are fixed by the shape only (never by the thread count) and every sum has a
// fixed order, so the results are deterministic. A band recomputes r output rows on
// each side for the gradients it owns.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"
#include "cpu/cpu_features.h"
#include "cpu/ssim_rows.h"
#include "cpu/ssim_volume.h"

namespace fastgan::cpu {
namespace {

using namespace ssim_rows;

// ---------------------------------------------------------------------------
// Geometry, bands and the job description.

struct Geometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int win = 0, r = 0, pad = 0;
  int64_t padding = kPadValid;
  int64_t hp = 0, wp = 0, ho = 0, wo = 0;  // padded input and output (map) sizes
  int64_t bands = 1;                        // row bands per plane
};

Geometry make_geometry(const at::Tensor& x, int64_t win, int64_t padding) {
  Geometry g;
  g.n = x.size(0);
  g.c = x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.win = int(win);
  g.r = int(win / 2);
  g.padding = padding;
  g.pad = padding == kPadValid ? 0 : g.r;
  g.hp = g.h + 2 * g.pad;
  g.wp = g.w + 2 * g.pad;
  g.ho = g.hp - 2 * g.r;
  g.wo = g.wp - 2 * g.r;
  g.bands = band_count(g.n * g.c, g.ho);
  return g;
}

Band make_band(const Geometry& g, int64_t b, bool grad) {
  return ssim_rows::make_band(g.ho, g.hp, g.r, g.bands, b, grad);
}

template <typename T>
struct Job : JobCommon<T> {
  Geometry g;
};

// Padded row i of one plane of v (opmath, width wp).
template <typename T>
void load_padded_row(const Job<T>& job, const View& v, int64_t plane, int64_t i, T* out) {
  const Geometry& g = job.g;
  const char* base = v.data + (plane / g.c * v.sn + plane % g.c * v.sc) * job.io.elem;
  if (g.padding == kPadValid) {
    job.io.load(base + i * v.sh * job.io.elem, v.sw, g.w, out);
    return;
  }
  int64_t j = i - g.pad;
  if (g.padding == kPadZero && (j < 0 || j >= g.h)) {
    std::fill(out, out + g.wp, T(0));
    return;
  }
  if (g.padding == kPadReflect) j = reflect_index(j, g.h);
  load_padded_line(job.io, base + j * v.sh * job.io.elem, v.sw, g.w, g.pad, g.padding, out);
}

#define FASTGAN_SSIM_CORE "cpu/ssim_kernel.h"
#include "cpu/ssim_cores.h"

template <typename T>
int64_t scratch_rows(const Job<T>& job) {
  const int64_t rs = job.g.win + 2;
  // rings x, y; products 3; moment rings 5; zero; per pair half: moments 5, w, v,
  // (cpad 5, arow 5, gx, gy); gradient rings 5; fold rows.
  return 2 * rs + 3 + 5 * rs + 1 + 2 * (5 + 2 + 12) + 5 * rs + 2 * job.fold_rows;
}

// Runs every (plane, band) task; returns the per-plane sums in a fixed order.
template <typename T>
std::vector<BandSums> run_job(const Job<T>& job) {
  const Geometry& g = job.g;
  const auto fn = band_fn<T>(g.win);
  const int64_t stride = aligned_stride(g.wp + 2 * g.r), rows = scratch_rows(job);
  auto scratch = [&] {
    Scratch<T> s;
    s.allocate(rows, stride);
    return s;
  };
  return run_tasks(g.n * g.c, g.bands, scratch, [&](Scratch<T>& s, int64_t plane, int64_t b) {
    return fn(job, plane, make_band(g, b, job.grad), s);
  });
}

// ---------------------------------------------------------------------------
// Checks and job setup shared by the ops.

using Params = SsimParams;  // checked by check_ssim_inputs (common/ssim_checks.h)

template <typename T>
Job<T> make_job(const at::Tensor& x, const at::Tensor& y, const Params& p) {
  Job<T> job;
  job.g = make_geometry(x, p.win, p.padding);
  init_job(job, x, y, p);
  return job;
}

template <typename T>
void set_grads(Job<T>& job, const at::Tensor& x, bool need_x, bool need_y, at::Tensor& gx,
               at::Tensor& gy) {
  set_grad_outputs(job, x, need_x, need_y, job.g.h, job.g.pad, job.g.padding, gx, gy);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> forward_impl(
    const char* op, const at::Tensor& x, const at::Tensor& y, const std::optional<at::Tensor>& mask,
    const Params& p, bool grad, bool need_x, bool need_y, double grad_scale) {
  check_ssim_inputs(op, x, y, p);
  const at::Tensor m = checked_ssim_mask(op, x, mask);
  if (x.dim() == 5) {
    volume::Request req{x, y, m, {}, {}, p, grad, need_x, need_y, false, grad_scale};
    auto [sums, weights, gx, gy, map] = volume::run(req);
    return {sums, weights, gx, gy};
  }
  at::Tensor gx, gy;
  std::tuple<at::Tensor, at::Tensor> st;
  dispatch_opmath(x.scalar_type(), [&]<typename T>() {
    Job<T> job = make_job<T>(x, y, p);
    job.mask = view_of(m);
    job.scale = grad_scale;
    if (grad) set_grads(job, x, need_x, need_y, gx, gy);
    st = sums_tensors(run_job(job), x);
  });
  return {std::get<0>(st), std::get<1>(st), gx, gy};
}

std::tuple<at::Tensor, at::Tensor> ssim_forward(const at::Tensor& x, const at::Tensor& y,
                                                const std::optional<at::Tensor>& mask,
                                                int64_t window_size, double sigma, double k1,
                                                double k2, double data_range, int64_t padding,
                                                int64_t stat, double alpha) {
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  auto r = forward_impl("ssim_forward", x, y, mask, p, false, false, false, 1.0);
  return {std::get<0>(r), std::get<1>(r)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ssim_forward_with_grad(
    const at::Tensor& x, const at::Tensor& y, const std::optional<at::Tensor>& mask,
    int64_t window_size, double sigma, double k1, double k2, double data_range, int64_t padding,
    int64_t stat, double alpha, bool need_x, bool need_y, double grad_scale) {
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  return forward_impl("ssim_forward_with_grad", x, y, mask, p, true, need_x, need_y, grad_scale);
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
  const at::Tensor m = checked_ssim_mask(op, x, mask);
  const at::Tensor factor = grad.to(at::kDouble).contiguous();
  if (x.dim() == 5) {
    volume::Request req{x, y, m, {}, factor, p, true, need_x, need_y, false, 1.0};
    auto out = volume::run(req);
    return {std::get<2>(out), std::get<3>(out)};
  }
  at::Tensor gx, gy;
  dispatch_opmath(x.scalar_type(), [&]<typename T>() {
    Job<T> job = make_job<T>(x, y, p);
    job.mask = view_of(m);
    job.factor = factor.const_data_ptr<double>();
    set_grads(job, x, need_x, need_y, gx, gy);
    if (need_x || need_y) run_job(job);
  });
  return {gx, gy};
}

at::Tensor ssim_map_forward(const at::Tensor& x, const at::Tensor& y, int64_t window_size,
                            double sigma, double k1, double k2, double data_range, int64_t padding,
                            int64_t stat, double alpha) {
  constexpr const char* op = "ssim_map_forward";
  const Params p{window_size, padding, stat, sigma, k1, k2, data_range, alpha};
  check_ssim_inputs(op, x, y, p);
  if (x.dim() == 5) {
    volume::Request req{x, y, {}, {}, {}, p, false, false, false, true, 1.0};
    return std::get<4>(volume::run(req));
  }
  at::Tensor map;
  dispatch_opmath(x.scalar_type(), [&]<typename T>() {
    Job<T> job = make_job<T>(x, y, p);
    map = at::empty({job.g.n, job.g.c, job.g.ho, job.g.wo}, x.options().memory_format(
                                                                 at::MemoryFormat::Contiguous));
    job.map = static_cast<char*>(map.mutable_data_ptr());
    run_job(job);
  });
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
  if (x.dim() == 5) {
    volume::Request req{x, y, {}, grad, {}, p, true, need_x, need_y, false, 1.0};
    auto out = volume::run(req);
    return {std::get<2>(out), std::get<3>(out)};
  }
  at::Tensor gx, gy;
  dispatch_opmath(x.scalar_type(), [&]<typename T>() {
    Job<T> job = make_job<T>(x, y, p);
    const at::Tensor gm = grad.to(x.scalar_type());
    job.grad_map = view_of(gm);
    set_grads(job, x, need_x, need_y, gx, gy);
    if (need_x || need_y) run_job(job);
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("ssim_forward", &ssim_forward);
  m.impl("ssim_backward", &ssim_backward);
  m.impl("ssim_forward_with_grad", &ssim_forward_with_grad);
  m.impl("ssim_map_forward", &ssim_map_forward);
  m.impl("ssim_map_backward", &ssim_map_backward);
}

}  // namespace fastgan::cpu
