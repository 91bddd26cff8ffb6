// CPU kernels of the masked pointwise losses (L1, squared error, Charbonnier).
//
// Forward: one pass over x, y and the mask, producing per-image sums of
// w * e(x - y) and of the broadcast weights w. Backward: one pass writing
// grad_x = g * w * e'(x - y) / weight_sum. Work is split into fixed pixel
// chunks per image so that results do not depend on the thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "common/loss_common.h"
#include "common/pointwise_loss.h"

namespace fastgan::cpu {
namespace {

constexpr int64_t kPixelsPerTask = 4096;

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

struct ChunkSums {
  double num = 0.0;
  double den = 0.0;
};

// Sums over pixels [p0, p1) of one image: all channels of those pixels.
template <typename scalar_t, int KIND, int MASK>
ChunkSums chunk_forward(const scalar_t* x, const scalar_t* y, const scalar_t* m, int64_t c,
                        int64_t hw, bool nhwc, int64_t p0, int64_t p1, opmath_t<scalar_t> eps2) {
  using T = opmath_t<scalar_t>;
  T num = 0, den = 0;
  if constexpr (MASK != kPixelMask) {
    // Without a per-pixel broadcast, element order is irrelevant: one flat loop.
    const int64_t e0 = p0 * c, e1 = p1 * c;
#pragma omp simd reduction(+ : num, den)
    for (int64_t e = e0; e < e1; ++e) {
      const T d = T(x[e]) - T(y[e]);
      const T w = MASK == kFullMask ? T(m[e]) : T(1);
      num += w * pointwise_error<KIND>(d, eps2);
      den += w;
    }
  } else if (!nhwc) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const scalar_t* xr = x + ch * hw;
      const scalar_t* yr = y + ch * hw;
#pragma omp simd reduction(+ : num)
      for (int64_t p = p0; p < p1; ++p) {
        num += T(m[p]) * pointwise_error<KIND>(T(xr[p]) - T(yr[p]), eps2);
      }
    }
#pragma omp simd reduction(+ : den)
    for (int64_t p = p0; p < p1; ++p) den += T(m[p]);
    den *= T(c);
  } else {
    for (int64_t p = p0; p < p1; ++p) {
      const T w = T(m[p]);
      T s = 0;
      for (int64_t ch = 0; ch < c; ++ch) {
        s += pointwise_error<KIND>(T(x[p * c + ch]) - T(y[p * c + ch]), eps2);
      }
      num += w * s;
      den += w * T(c);
    }
  }
  return {double(num), double(den)};
}

template <typename scalar_t, int KIND, int MASK>
void chunk_backward(scalar_t* gx, const scalar_t* x, const scalar_t* y, const scalar_t* m,
                    int64_t c, int64_t hw, bool nhwc, int64_t p0, int64_t p1,
                    opmath_t<scalar_t> scale, opmath_t<scalar_t> eps2) {
  using T = opmath_t<scalar_t>;
  if constexpr (MASK != kPixelMask) {
    const int64_t e0 = p0 * c, e1 = p1 * c;
#pragma omp simd
    for (int64_t e = e0; e < e1; ++e) {
      const T w = MASK == kFullMask ? T(m[e]) : T(1);
      gx[e] = scalar_t(scale * w * pointwise_error_grad<KIND>(T(x[e]) - T(y[e]), eps2));
    }
  } else if (!nhwc) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = ch * hw;
#pragma omp simd
      for (int64_t p = p0; p < p1; ++p) {
        gx[off + p] = scalar_t(scale * T(m[p]) *
                               pointwise_error_grad<KIND>(T(x[off + p]) - T(y[off + p]), eps2));
      }
    }
  } else {
    for (int64_t p = p0; p < p1; ++p) {
      const T sw = scale * T(m[p]);
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t e = p * c + ch;
        gx[e] = scalar_t(sw * pointwise_error_grad<KIND>(T(x[e]) - T(y[e]), eps2));
      }
    }
  }
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

std::tuple<at::Tensor, at::Tensor> masked_loss_forward(const at::Tensor& x_in,
                                                       const at::Tensor& y_in,
                                                       const std::optional<at::Tensor>& mask,
                                                       int64_t kind, double eps,
                                                       int64_t reduction) {
  check_reduction("masked_loss_forward", reduction);
  const ImageBatch b = prepare_images("masked_loss_forward", x_in, y_in, mask);
  const int64_t tasks_per_image = std::max<int64_t>(1, (b.hw + kPixelsPerTask - 1) / kPixelsPerTask);
  std::vector<ChunkSums> partial(b.n * tasks_per_image);
  const auto opmath = b.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(),
                                  "masked_loss_forward", [&] {
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
    const int64_t image = b.c * b.hw;
    const int64_t mask_image = b.mask_mode == kPixelMask ? b.hw : image;
    const auto eps2 = opmath_t<scalar_t>(eps * eps);
    dispatch_kind_mask(kind, b.mask_mode, [&]<int K, int M>() {
      at::parallel_for(0, b.n * tasks_per_image, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t img = t / tasks_per_image;
          const int64_t p0 = (t % tasks_per_image) * kPixelsPerTask;
          const int64_t p1 = std::min(b.hw, p0 + kPixelsPerTask);
          partial[t] = chunk_forward<scalar_t, K, M>(
              x + img * image, y + img * image, m ? m + img * mask_image : nullptr, b.c, b.hw,
              b.nhwc, p0, p1, eps2);
        }
      });
    });
  });

  auto weight_sum = at::empty({b.n}, b.x.options().dtype(opmath));
  auto per_image_loss = at::empty({b.n}, weight_sum.options());
  AT_DISPATCH_FLOATING_TYPES(opmath, "masked_loss_forward_reduce", [&] {
    auto* ws = weight_sum.data_ptr<scalar_t>();
    auto* li = per_image_loss.data_ptr<scalar_t>();
    double total_num = 0.0, total_den = 0.0;
    for (int64_t i = 0; i < b.n; ++i) {
      double num = 0.0, den = 0.0;
      for (int64_t k = 0; k < tasks_per_image; ++k) {
        num += partial[i * tasks_per_image + k].num;
        den += partial[i * tasks_per_image + k].den;
      }
      ws[i] = scalar_t(den);
      li[i] = scalar_t(den > 0.0 ? num / den : 0.0);
      total_num += num;
      total_den += den;
    }
    if (reduction != kNone) {
      const double v = reduction == kSum ? total_num : (total_den > 0.0 ? total_num / total_den : 0.0);
      per_image_loss = at::scalar_tensor(v, weight_sum.options());
    }
  });
  return {per_image_loss.to(b.x.scalar_type()), weight_sum};
}

// The per-image factor d(loss)/d(w * e) = g / weight_sum (mean, none) or g (sum);
// zero where the mask weights sum to zero.
std::vector<double> per_image_scale(const at::Tensor& grad, const at::Tensor& weight_sum,
                                    int64_t reduction) {
  const auto ws = weight_sum.to(at::kDouble).contiguous();
  const auto g = grad.to(at::kDouble).contiguous();
  const double* w = ws.const_data_ptr<double>();
  const double* gv = g.const_data_ptr<double>();
  const int64_t n = ws.numel();
  std::vector<double> scale(n);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += w[i];
  for (int64_t i = 0; i < n; ++i) {
    if (reduction == kNone) {
      scale[i] = w[i] > 0.0 ? gv[i] / w[i] : 0.0;
    } else if (reduction == kMean) {
      scale[i] = total > 0.0 ? gv[0] / total : 0.0;
    } else {
      scale[i] = gv[0];
    }
  }
  return scale;
}

at::Tensor masked_loss_backward(const at::Tensor& grad, const at::Tensor& x_in,
                                const at::Tensor& y_in, const std::optional<at::Tensor>& mask,
                                const at::Tensor& weight_sum, int64_t kind, double eps,
                                int64_t reduction) {
  check_reduction("masked_loss_backward", reduction);
  const ImageBatch b = prepare_images("masked_loss_backward", x_in, y_in, mask);
  TORCH_CHECK(weight_sum.numel() == b.n, "masked_loss_backward: weight_sum must have N elements");
  TORCH_CHECK(grad.numel() == (reduction == kNone ? b.n : 1),
              "masked_loss_backward: grad has the wrong number of elements");
  const std::vector<double> scale = per_image_scale(grad, weight_sum, reduction);
  auto gx = at::empty_like(b.x);
  const int64_t tasks_per_image = std::max<int64_t>(1, (b.hw + kPixelsPerTask - 1) / kPixelsPerTask);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(),
                                  "masked_loss_backward", [&] {
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* g = gx.mutable_data_ptr<scalar_t>();
    const int64_t image = b.c * b.hw;
    const int64_t mask_image = b.mask_mode == kPixelMask ? b.hw : image;
    const auto eps2 = opmath_t<scalar_t>(eps * eps);
    dispatch_kind_mask(kind, b.mask_mode, [&]<int K, int M>() {
      at::parallel_for(0, b.n * tasks_per_image, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; ++t) {
          const int64_t img = t / tasks_per_image;
          const int64_t p0 = (t % tasks_per_image) * kPixelsPerTask;
          const int64_t p1 = std::min(b.hw, p0 + kPixelsPerTask);
          chunk_backward<scalar_t, K, M>(g + img * image, x + img * image, y + img * image,
                                         m ? m + img * mask_image : nullptr, b.c, b.hw, b.nhwc,
                                         p0, p1, opmath_t<scalar_t>(scale[img]), eps2);
        }
      });
    });
  });
  return gx;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("masked_loss_forward", &masked_loss_forward);
  m.impl("masked_loss_backward", &masked_loss_backward);
}

}  // namespace fastgan::cpu
