// CPU kernels of the masked pointwise losses (L1, squared error, Charbonnier).
//
// Three ops share one chunk loop:
//  - masked_loss_forward: one pass over x, y and the mask giving per-image sums of
//    w * e(x - y); the weight sums (and the [0, 1] check) come from the mask alone;
//  - masked_loss_backward: one pass writing grad_x = g * w * e'(x - y) / weight_sum;
//  - masked_loss_forward_with_grad (CPU only): the loss AND grad_x for an upstream
//    gradient of one in a single pass over x and y (the weight sums come first, from
//    the mask alone), so training needs no second pass over the images: the backward
//    only scales the stored gradient, or returns it as is when the upstream gradient
//    is exactly one. Same bytes as forward + backward minus a read of x and y.
// Work is split into fixed pixel chunks per image, so results do not depend on the
// thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "common/loss_common.h"
#include "common/pointwise_loss.h"
#include "cpu/lane_sums.h"
#include "cpu/pointwise_rows_avx2.h"
#include "cpu/streaming_stores.h"
#include "cpu/mask_weights.h"

namespace fastgan::cpu {
namespace {

constexpr int64_t kPixelsPerTask = 4096;

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// n contiguous elements: the sum of w * e(d), w per element (W_STEP 1), one weight for
// the whole row (W_STEP 0, w[0]) or none (W_STEP -1, w unused); with GRAD also
// gx = scale * w * e'(d). Pointers come in offset to the row and the loop counts from
// zero: GCC kept the offset-index form of this loop scalar (2x slower here), and the
// weight mode is compile-time so that no test on w sits in the loop. The sum runs in
// kLanes partial sums (cpu/lane_sums.h): one accumulator made this loop latency-bound.
template <int KIND, int W_STEP, bool GRAD, typename scalar_t, typename T>
inline T element_pass(const scalar_t* x, const scalar_t* y, const scalar_t* w, scalar_t* gx,
                      int64_t i, T eps2, T scale) {
  const T d = T(x[i]) - T(y[i]);
  T wi = T(1);
  if constexpr (W_STEP >= 0) wi = T(w[W_STEP * i]);
  if constexpr (GRAD) gx[i] = scalar_t(scale * wi * pointwise_error_grad<KIND>(d, eps2));
  return wi * pointwise_error<KIND>(d, eps2);
}

// One contiguous row: float through the AVX2 rows (cpu/pointwise_rows_avx2.h) where the
// build has them, every other type (and float elsewhere) through the generic loop.
template <int KIND, int W_STEP, bool GRAD, typename scalar_t, typename T>
T row_pass(const scalar_t* x, const scalar_t* y, const scalar_t* w, scalar_t* gx, int64_t n,
           T eps2, T scale) {
#ifdef FASTGAN_HAVE_AVX2_ROWS
  if constexpr (std::is_same_v<scalar_t, float>) {
    // Float gradients go out with streaming stores where the row is 32-byte aligned: no
    // read-for-ownership of gx's lines (a third of the bytes a fused pass moves for them).
    // The caller fences once per thread (run_passes).
    if (GRAD && n >= kMinStreamedRow && aligned32(gx)) {
      return avx2::pointwise_row<KIND, W_STEP, GRAD, true>(x, y, w, gx, n, eps2, scale);
    }
    return avx2::pointwise_row<KIND, W_STEP, GRAD, false>(x, y, w, gx, n, eps2, scale);
  }
#endif
  constexpr int L = kLanes<T>;
  T acc[L] = {};
  const int64_t body = n / L * L;
  for (int64_t b = 0; b < body; b += L) {
    const scalar_t* xb = x + b;
    const scalar_t* yb = y + b;
    const scalar_t* wb = W_STEP == 1 ? w + b : w;
    scalar_t* gb = GRAD ? gx + b : nullptr;
#pragma omp simd
    for (int j = 0; j < L; ++j) acc[j] += element_pass<KIND, W_STEP, GRAD>(xb, yb, wb, gb, j, eps2, scale);
  }
  T num = lane_total(acc);
  for (int64_t i = body; i < n; ++i) num += element_pass<KIND, W_STEP, GRAD>(x, y, w, gx, i, eps2, scale);
  return num;
}

// Pixels [p0, p1) of one image, all channels: the sum of w * e(d). With GRAD, also
// writes gx = scale * w * e'(d). (The weight sums come from mask_weight_sums.)
template <typename scalar_t, int KIND, int MASK, bool GRAD>
double chunk_pass(const scalar_t* x, const scalar_t* y, const scalar_t* m, scalar_t* gx,
                  int64_t c, int64_t hw, bool nhwc, int64_t p0, int64_t p1,
                  opmath_t<scalar_t> eps2, opmath_t<scalar_t> scale) {
  using T = opmath_t<scalar_t>;
  T num = 0;
  if constexpr (MASK != kPixelMask) {
    // Without a per-pixel broadcast, element order is irrelevant: one flat row.
    const int64_t e0 = p0 * c;
    num = row_pass<KIND, MASK == kFullMask ? 1 : -1, GRAD>(
        x + e0, y + e0, MASK == kFullMask ? m + e0 : nullptr, GRAD ? gx + e0 : nullptr,
        (p1 - p0) * c, eps2, scale);
  } else if (!nhwc) {
    for (int64_t ch = 0; ch < c; ++ch) {  // each channel's chunk is a row; the mask row repeats
      const int64_t off = ch * hw + p0;
      num += row_pass<KIND, 1, GRAD>(x + off, y + off, m + p0, GRAD ? gx + off : nullptr,
                                     p1 - p0, eps2, scale);
    }
  } else {
    for (int64_t p = p0; p < p1; ++p) {  // NHWC: one pixel's channels share its weight
      num += row_pass<KIND, 0, GRAD>(x + p * c, y + p * c, m + p, GRAD ? gx + p * c : nullptr, c,
                                     eps2, scale);
    }
  }
  return double(num);
}

// Calls fn.template operator()<KIND, MASK>() with compile-time constants.
template <typename Fn>
void dispatch_kind_mask(int64_t kind, int mask_mode, Fn&& fn) {
  auto with_mask = [&](auto kind_c) {
    constexpr int K = decltype(kind_c)::value;
    switch (mask_mode) {
      case kNoMask: fn.template operator()<K, kNoMask>(); break;
      case kPixelMask: fn.template operator()<K, kPixelMask>(); break;
      default: fn.template operator()<K, kFullMask>(); break;
    }
  };
  switch (kind) {
    case kL1: with_mask(std::integral_constant<int, kL1>{}); break;
    case kSquared: with_mask(std::integral_constant<int, kSquared>{}); break;
    case kCharbonnier: with_mask(std::integral_constant<int, kCharbonnier>{}); break;
    default: TORCH_CHECK(false, "masked_loss: kind code must be 0, 1 or 2, got ", kind);
  }
}

int64_t tasks_per_image(const ImageBatch& b) {
  return std::max<int64_t>(1, (b.hw + kPixelsPerTask - 1) / kPixelsPerTask);
}

// Runs chunk_pass over every (image, pixel chunk) in parallel; returns the chunk sums
// in a fixed order. scale[i] is image i's gradient factor (GRAD only).
template <bool GRAD>
std::vector<double> run_passes(const ImageBatch& b, int64_t kind, double eps, at::Tensor* gx,
                                  const std::vector<double>& scale) {
  const int64_t tpi = tasks_per_image(b);
  std::vector<double> partial(b.n * tpi);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(), "masked_loss", [&] {
    using T = opmath_t<scalar_t>;
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* g = GRAD ? gx->mutable_data_ptr<scalar_t>() : nullptr;
    const int64_t image = b.c * b.hw;
    const int64_t mask_image = b.mask_mode == kPixelMask ? b.hw : image;
    dispatch_kind_mask(kind, b.mask_mode, [&]<int K, int M>() {
      at::parallel_for(0, b.n * tpi, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t img = t / tpi;
          const int64_t p0 = (t % tpi) * kPixelsPerTask;
          const int64_t p1 = std::min(b.hw, p0 + kPixelsPerTask);
          partial[t] = chunk_pass<scalar_t, K, M, GRAD>(
              x + img * image, y + img * image, m ? m + img * mask_image : nullptr,
              g ? g + img * image : nullptr, b.c, b.hw, b.nhwc, p0, p1, T(eps * eps),
              GRAD ? T(scale[img]) : T(0));
        }
        // Orders this thread's streaming stores, once: a fence per row (every 4-16 KB)
        // stalled the loop on draining the write-combining buffers, ~0.1 ms a call.
        if constexpr (GRAD) stream_fence();
      });
    });
  });
  return partial;
}

struct Reduced {
  at::Tensor loss, weight_sum;
};

// Per-chunk loss sums and per-image weight sums -> the reduced loss (in x's dtype)
// and the weight sums (opmath).
Reduced reduce(const ImageBatch& b, const std::vector<double>& partial,
               const std::vector<double>& den_per_image, int64_t reduction) {
  const int64_t tpi = tasks_per_image(b);
  auto ws = at::empty({b.n}, b.x.options().dtype(at::kDouble));
  auto li = at::empty({b.n}, ws.options());
  double* wsp = ws.data_ptr<double>();
  double* lip = li.data_ptr<double>();
  double total_num = 0.0, total_den = 0.0;
  for (int64_t i = 0; i < b.n; ++i) {
    double num = 0.0;
    for (int64_t k = 0; k < tpi; ++k) num += partial[i * tpi + k];
    const double den = den_per_image[i];
    wsp[i] = den;
    lip[i] = den > 0.0 ? num / den : 0.0;
    total_num += num;
    total_den += den;
  }
  at::Tensor loss = li;
  if (reduction != kNone) {
    const double v = reduction == kSum ? total_num : (total_den > 0.0 ? total_num / total_den : 0.0);
    loss = at::scalar_tensor(v, ws.options());
  }
  const auto opmath = b.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return {loss.to(b.x.scalar_type()), ws.to(opmath)};
}

// d loss / d (w * e) per image: g / weight_sum (mean over the batch total, or per image
// for none) or g (sum); zero where the weights sum to zero.
std::vector<double> gradient_scale(const std::vector<double>& den, const double* g,
                                   int64_t reduction) {
  double total = 0.0;
  for (double d : den) total += d;
  std::vector<double> scale(den.size());
  for (size_t i = 0; i < den.size(); ++i) {
    if (reduction == kNone) {
      scale[i] = den[i] > 0.0 ? g[i] / den[i] : 0.0;
    } else if (reduction == kMean) {
      scale[i] = total > 0.0 ? g[0] / total : 0.0;
    } else {
      scale[i] = g[0];
    }
  }
  return scale;
}

std::tuple<at::Tensor, at::Tensor> masked_loss_forward(const at::Tensor& x, const at::Tensor& y,
                                                       const std::optional<at::Tensor>& mask,
                                                       int64_t kind, double eps,
                                                       int64_t reduction) {
  check_reduction("masked_loss_forward", reduction);
  const ImageBatch b = prepare_images("masked_loss_forward", x, y, mask);
  const std::vector<double> den = mask_weight_sums("masked_loss_forward", b);
  const auto partial = run_passes<false>(b, kind, eps, nullptr, {});
  auto r = reduce(b, partial, den, reduction);
  return {r.loss, r.weight_sum};
}

at::Tensor masked_loss_backward(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y,
                                const std::optional<at::Tensor>& mask,
                                const at::Tensor& weight_sum, int64_t kind, double eps,
                                int64_t reduction) {
  check_reduction("masked_loss_backward", reduction);
  const ImageBatch b = prepare_images("masked_loss_backward", x, y, mask);
  TORCH_CHECK(weight_sum.numel() == b.n, "masked_loss_backward: weight_sum must have N elements");
  TORCH_CHECK(grad.numel() == (reduction == kNone ? b.n : 1),
              "masked_loss_backward: grad has the wrong number of elements");
  const auto ws = weight_sum.to(at::kDouble).contiguous();
  const auto g = grad.to(at::kDouble).contiguous();
  const std::vector<double> den(ws.const_data_ptr<double>(), ws.const_data_ptr<double>() + b.n);
  auto gx = at::empty_like(b.x);
  run_passes<true>(b, kind, eps, &gx, gradient_scale(den, g.const_data_ptr<double>(), reduction));
  return gx;
}

std::tuple<at::Tensor, at::Tensor> masked_loss_forward_with_grad(
    const at::Tensor& x, const at::Tensor& y, const std::optional<at::Tensor>& mask, int64_t kind,
    double eps, int64_t reduction) {
  check_reduction("masked_loss_forward_with_grad", reduction);
  const ImageBatch b = prepare_images("masked_loss_forward_with_grad", x, y, mask);
  const std::vector<double> den = mask_weight_sums("masked_loss_forward_with_grad", b);
  const std::vector<double> ones(reduction == kNone ? b.n : 1, 1.0);
  auto gx = at::empty_like(b.x);
  const auto partial = run_passes<true>(b, kind, eps, &gx, gradient_scale(den, ones.data(), reduction));
  return {reduce(b, partial, den, reduction).loss, gx};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("masked_loss_forward", &masked_loss_forward);
  m.impl("masked_loss_backward", &masked_loss_backward);
  m.impl("masked_loss_forward_with_grad", &masked_loss_forward_with_grad);
}

}  // namespace fastgan::cpu
