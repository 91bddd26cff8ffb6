// CPU kernels of the cosine-similarity loss 1 - cos(w*x, w*y), per image over
// (C, H, W) (dim 0) or per pixel over C (dim 1). Per image, the forward keeps
// the three dot products per image for the backward; per pixel, the backward
// recomputes them (C values per pixel) instead of storing a map.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <array>
#include <vector>

#include "common/cosine_loss.h"
#include "common/loss_common.h"

namespace fastgan::cpu {
namespace {

constexpr int64_t kPixelsPerTask = 1024;

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// Offsets of element (ch, p) of one image and its squared mask weight. Layout and
// mask mode are compile-time so that the inner loops vectorise.
template <bool NHWC, int MASK>
struct ImageIndex {
  static constexpr int kMask = MASK;
  int64_t c, hw;
  int64_t elem(int64_t ch, int64_t p) const { return NHWC ? p * c + ch : ch * hw + p; }
  template <typename T, typename scalar_t>
  T weight_sq(const scalar_t* m, int64_t ch, int64_t p) const {
    if constexpr (MASK == kNoMask) {
      return T(1);
    } else {
      const T w = T(m[MASK == kPixelMask ? p : elem(ch, p)]);
      return w * w;
    }
  }
};

// Calls fn(ImageIndex<NHWC, MASK>{c, hw}) for the batch's layout and mask mode.
template <typename Fn>
void with_index(const ImageBatch& b, Fn&& fn) {
  auto with_mask = [&](auto nhwc) {
    constexpr bool L = decltype(nhwc)::value;
    switch (b.mask_mode) {
      case kNoMask: fn(ImageIndex<L, kNoMask>{b.c, b.hw}); break;
      case kPixelMask: fn(ImageIndex<L, kPixelMask>{b.c, b.hw}); break;
      default: fn(ImageIndex<L, kFullMask>{b.c, b.hw}); break;
    }
  };
  if (b.nhwc) {
    with_mask(std::true_type{});
  } else {
    with_mask(std::false_type{});
  }
}

// Per-image dot products over pixels [p0, p1): {x.y, x.x, y.y} with w^2 weights.
template <typename scalar_t, typename Index>
std::array<double, 3> chunk_image_sums(const scalar_t* x, const scalar_t* y, const scalar_t* m,
                                       const Index& ix, int64_t p0, int64_t p1) {
  using T = opmath_t<scalar_t>;
  T dot = 0, nx = 0, ny = 0;
  if constexpr (Index::kMask != kPixelMask) {  // element order is irrelevant: one flat loop
#pragma omp simd reduction(+ : dot, nx, ny)
    for (int64_t e = p0 * ix.c; e < p1 * ix.c; ++e) {
      const T w2 = Index::kMask == kNoMask ? T(1) : T(m[e]) * T(m[e]);
      const T xv = T(x[e]), yv = T(y[e]);
      dot += w2 * xv * yv;
      nx += w2 * xv * xv;
      ny += w2 * yv * yv;
    }
  } else {
    for (int64_t ch = 0; ch < ix.c; ++ch) {
#pragma omp simd reduction(+ : dot, nx, ny)
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t e = ix.elem(ch, p);
        const T w2 = T(m[p]) * T(m[p]), xv = T(x[e]), yv = T(y[e]);
        dot += w2 * xv * yv;
        nx += w2 * xv * xv;
        ny += w2 * yv * yv;
      }
    }
  }
  return {double(dot), double(nx), double(ny)};
}

// Per-pixel statistics of pixels [p0, p1) into dot/nx/ny[p - p0].
template <typename scalar_t, typename T, typename Index>
void chunk_pixel_stats(const scalar_t* x, const scalar_t* y, const scalar_t* m, const Index& ix, int64_t p0, int64_t p1, T* dot, T* nx, T* ny) {
  const int64_t len = p1 - p0;
  for (int64_t k = 0; k < len; ++k) dot[k] = nx[k] = ny[k] = T(0);
  for (int64_t ch = 0; ch < ix.c; ++ch) {
#pragma omp simd
    for (int64_t k = 0; k < len; ++k) {
      const int64_t p = p0 + k, e = ix.elem(ch, p);
      const T w2 = ix.template weight_sq<T>(m, ch, p), xv = T(x[e]), yv = T(y[e]);
      dot[k] += w2 * xv * yv;
      nx[k] += w2 * xv * xv;
      ny[k] += w2 * yv * yv;
    }
  }
}

// Gradients over pixels [p0, p1): d loss / d x = dcos * w^2 (a y - bx x), likewise for y.
// `coef_at(k)` gives the coefficients of pixel p0 + k: fixed per image for dim 0,
// from the per-pixel dot products for dim 1.
template <typename scalar_t, typename T, typename Index, typename CoefAt>
inline void chunk_backward(scalar_t* gx, scalar_t* gy, const scalar_t* x, const scalar_t* y,
                           const scalar_t* m, const Index& ix, int64_t p0, int64_t p1,
                           T dcos, CoefAt coef_at) {
  for (int64_t ch = 0; ch < ix.c; ++ch) {
#pragma omp simd
    for (int64_t p = p0; p < p1; ++p) {
      const CosineCoef<T> c = coef_at(p - p0);
      const int64_t e = ix.elem(ch, p);
      const T w2d = dcos * ix.template weight_sq<T>(m, ch, p);
      const T xv = T(x[e]), yv = T(y[e]);
      if (gx) gx[e] = scalar_t(w2d * (c.a * yv - c.bx * xv));
      if (gy) gy[e] = scalar_t(w2d * (c.a * xv - c.by * yv));
    }
  }
}

// Sum over pixels [0, len) of the per-pixel losses 1 - cos.
template <typename T>
inline T sum_pixel_losses(const T* dot, const T* nx, const T* ny, int64_t len, T eps) {
  T loss = 0;
#pragma omp simd reduction(+ : loss)
  for (int64_t k = 0; k < len; ++k) loss += T(1) - cosine_coef<T>(dot[k], nx[k], ny[k], eps).cos;
  return loss;
}

// Per-pixel coefficients once per pixel, in place: dot -> a, nx -> bx, ny -> by.
template <typename T>
inline void to_coefficients(T* dot, T* nx, T* ny, int64_t len, T eps) {
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    const auto c = cosine_coef<T>(dot[k], nx[k], ny[k], eps);
    dot[k] = c.a;
    nx[k] = c.bx;
    ny[k] = c.by;
  }
}

struct Plan {
  ImageBatch b;
  int64_t tasks_per_image;
  int64_t image, mask_image;
};

Plan make_plan(const char* op, const at::Tensor& x, const at::Tensor& y,
               const std::optional<at::Tensor>& mask, int64_t dim, int64_t reduction) {
  check_reduction(op, reduction);
  TORCH_CHECK(dim == 0 || dim == 1, op, ": dim code must be 0 (per image) or 1 (per pixel)");
  Plan p{prepare_images(op, x, y, mask), 0, 0, 0};
  p.tasks_per_image = std::max<int64_t>(1, (p.b.hw + kPixelsPerTask - 1) / kPixelsPerTask);
  p.image = p.b.c * p.b.hw;
  p.mask_image = p.b.mask_mode == kPixelMask ? p.b.hw : p.image;
  return p;
}

std::tuple<at::Tensor, at::Tensor> cosine_loss_forward(const at::Tensor& x_in,
                                                       const at::Tensor& y_in,
                                                       const std::optional<at::Tensor>& mask,
                                                       int64_t dim, double eps,
                                                       int64_t reduction) {
  const Plan pl = make_plan("cosine_loss_forward", x_in, y_in, mask, dim, reduction);
  const ImageBatch& b = pl.b;
  const auto opmath = b.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // dim 0: per task {x.y, x.x, y.y}; dim 1: per task sum of per-pixel losses.
  std::vector<std::array<double, 3>> partial(b.n * pl.tasks_per_image);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(),
                                  "cosine_loss_forward", [&] {
    using T = opmath_t<scalar_t>;
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
    with_index(b, [&](auto ix) {
    at::parallel_for(0, b.n * pl.tasks_per_image, 1, [&](int64_t begin, int64_t end) {
      T dot[kPixelsPerTask], nx[kPixelsPerTask], ny[kPixelsPerTask];
      for (int64_t t = begin; t < end; ++t) {
        const int64_t img = t / pl.tasks_per_image;
        const int64_t p0 = (t % pl.tasks_per_image) * kPixelsPerTask;
        const int64_t p1 = std::min(b.hw, p0 + kPixelsPerTask);
        const scalar_t* xi = x + img * pl.image;
        const scalar_t* yi = y + img * pl.image;
        const scalar_t* mi = m ? m + img * pl.mask_image : nullptr;
        if (dim == 0) {
          partial[t] = chunk_image_sums(xi, yi, mi, ix, p0, p1);
        } else {
          chunk_pixel_stats(xi, yi, mi, ix, p0, p1, dot, nx, ny);
          partial[t] = {double(sum_pixel_losses<T>(dot, nx, ny, p1 - p0, T(eps))), 0.0, 0.0};
        }
      }
    });
    });
  });

  auto stats = at::empty({dim == 0 ? b.n : 0, 3}, b.x.options().dtype(at::kDouble));
  double* sp = stats.data_ptr<double>();
  auto loss = at::empty({b.n}, b.x.options().dtype(at::kDouble));
  double* li = loss.data_ptr<double>();
  for (int64_t i = 0; i < b.n; ++i) {
    std::array<double, 3> s{0.0, 0.0, 0.0};
    for (int64_t k = 0; k < pl.tasks_per_image; ++k) {
      for (int j = 0; j < 3; ++j) s[j] += partial[i * pl.tasks_per_image + k][j];
    }
    if (dim == 0) {
      for (int j = 0; j < 3; ++j) sp[i * 3 + j] = s[j];
      li[i] = 1.0 - cosine_coef<double>(s[0], s[1], s[2], eps).cos;
    } else {
      li[i] = s[0] / double(b.hw);  // `none` is the per-image mean over pixels
    }
  }
  at::Tensor out = loss;
  if (reduction != kNone) {
    const double total = loss.sum().item<double>() * (dim == 1 && reduction == kSum ? b.hw : 1);
    out = at::scalar_tensor(reduction == kMean ? total / double(b.n) : total, loss.options());
  }
  if (dim == 1) stats = at::empty({0}, stats.options());
  return {out.to(b.x.scalar_type()), stats.to(opmath)};
}

std::tuple<at::Tensor, at::Tensor> cosine_loss_backward(
    const at::Tensor& grad, const at::Tensor& x_in, const at::Tensor& y_in,
    const std::optional<at::Tensor>& mask, const at::Tensor& stats, int64_t dim, double eps,
    int64_t reduction, bool need_x, bool need_y) {
  const Plan pl = make_plan("cosine_loss_backward", x_in, y_in, mask, dim, reduction);
  const ImageBatch& b = pl.b;
  TORCH_CHECK(grad.numel() == (reduction == kNone ? b.n : 1),
              "cosine_loss_backward: grad has the wrong number of elements");
  TORCH_CHECK(dim == 1 || (stats.dim() == 2 && stats.size(0) == b.n && stats.size(1) == 3),
              "cosine_loss_backward: stats must have shape (N, 3) for dim 0");
  // d loss / d cos per image (per pixel for dim 1), folding in the reduction.
  const auto g = grad.to(at::kDouble).contiguous();
  const double* gv = g.const_data_ptr<double>();
  const double per_pixel = dim == 1 ? double(b.hw) : 1.0;
  std::vector<double> dcos(b.n);
  for (int64_t i = 0; i < b.n; ++i) {
    const double gi = reduction == kNone ? gv[i] / per_pixel
                      : reduction == kMean ? gv[0] / (double(b.n) * per_pixel)
                                           : gv[0];
    dcos[i] = -gi;
  }
  const auto st = dim == 0 ? stats.to(at::kDouble).contiguous() : at::Tensor();
  auto gx = need_x ? at::empty_like(b.x) : at::empty({0}, b.x.options());
  auto gy = need_y ? at::empty_like(b.y) : at::empty({0}, b.y.options());

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(),
                                  "cosine_loss_backward", [&] {
    using T = opmath_t<scalar_t>;
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* gxp = need_x ? gx.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gyp = need_y ? gy.mutable_data_ptr<scalar_t>() : nullptr;
    with_index(b, [&](auto ix) {
    at::parallel_for(0, b.n * pl.tasks_per_image, 1, [&](int64_t begin, int64_t end) {
      T dot[kPixelsPerTask], nx[kPixelsPerTask], ny[kPixelsPerTask];
      for (int64_t t = begin; t < end; ++t) {
        const int64_t img = t / pl.tasks_per_image;
        const int64_t p0 = (t % pl.tasks_per_image) * kPixelsPerTask;
        const int64_t p1 = std::min(b.hw, p0 + kPixelsPerTask);
        const int64_t off = img * pl.image;
        const scalar_t* mi = m ? m + img * pl.mask_image : nullptr;
        scalar_t* gxi = gxp ? gxp + off : nullptr;
        scalar_t* gyi = gyp ? gyp + off : nullptr;
        const T d = T(dcos[img]);
        if (dim == 0) {
          const double* s = st.const_data_ptr<double>() + img * 3;
          const auto coef = cosine_coef<T>(T(s[0]), T(s[1]), T(s[2]), T(eps));
          chunk_backward(gxi, gyi, x + off, y + off, mi, ix, p0, p1, d,
                         [&](int64_t) { return coef; });
        } else {
          chunk_pixel_stats(x + off, y + off, mi, ix, p0, p1, dot, nx, ny);
          to_coefficients(dot, nx, ny, p1 - p0, T(eps));
          chunk_backward(gxi, gyi, x + off, y + off, mi, ix, p0, p1, d, [&](int64_t k) {
            return CosineCoef<T>{T(0), dot[k], nx[k], ny[k]};
          });
        }
      }
    });
    });
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("cosine_loss_forward", &cosine_loss_forward);
  m.impl("cosine_loss_backward", &cosine_loss_backward);
}

}  // namespace fastgan::cpu
