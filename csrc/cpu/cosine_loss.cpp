// CPU kernels of the cosine-similarity loss 1 - cos(w*x, w*y), per image over
// (C, H, W) (dim 0) or per pixel over C (dim 1). Per image, the forward keeps the
// three dot products per image for the backward; per pixel, the backward recomputes
// them (C values per pixel) instead of storing a map.
//
// Loops run over pixel chunks of one image. In NCHW each channel of a chunk is a
// contiguous row, so the loops are written over row pointers (vectorised across
// pixels); NHWC walks pixels with the channels innermost. Float rows (and float NCHW
// per-pixel work) go through the AVX2 loops of cpu/cosine_rows_avx2.h where the build has
// them; gradients stream out, and every parallel body fences once at its end.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <array>
#include <vector>

#include "common/cosine_loss.h"
#include "common/loss_common.h"
#include "cpu/cosine_rows_avx2.h"
#include "cpu/mask_weights.h"
#include "cpu/streaming_stores.h"

namespace fastgan::cpu {
namespace {

constexpr int64_t kPixelsPerTask = 1024;

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// One image's pointers and geometry; the mask mode is compile-time.
template <typename scalar_t, int MASK>
struct ImageView {
  const scalar_t* x;
  const scalar_t* y;
  const scalar_t* m;  // null without a mask
  int64_t c, hw;
  bool nhwc;
};

// The loops below copy pointers into locals, offset them to the start of the range and
// count from zero: GCC kept the struct-member / offset-index forms scalar here (4x slower).

// Squared weight of a mask value; 1 without a mask.
template <typename T, int MASK, typename scalar_t>
inline T weight_sq(const scalar_t* w, int64_t i) {
  if constexpr (MASK == kNoMask) {
    return T(1);
  } else {
    return T(w[i]) * T(w[i]);
  }
}

// {x.y, x.x, y.y} with w^2 weights over n contiguous elements (w per element).
template <typename T, int MASK, typename scalar_t>
void accumulate_row(const scalar_t* x, const scalar_t* y, const scalar_t* w, int64_t n, T& dot,
                    T& nx, T& ny) {
#ifdef FASTGAN_HAVE_AVX2_ROWS
  if constexpr (std::is_same_v<scalar_t, float>) {
    avx2::cosine_sums_row<MASK != kNoMask>(x, y, w, n, dot, nx, ny);
    return;
  }
#endif
  T d = 0, a = 0, b = 0;
#pragma omp simd reduction(+ : d, a, b)
  for (int64_t i = 0; i < n; ++i) {
    const T w2 = weight_sq<T, MASK>(w, i), xv = T(x[i]), yv = T(y[i]);
    d += w2 * xv * yv;
    a += w2 * xv * xv;
    b += w2 * yv * yv;
  }
  dot += d;
  nx += a;
  ny += b;
}

// {x.y, x.x, y.y} with w^2 weights over pixels [p0, p1).
template <typename T, typename scalar_t, int MASK>
std::array<double, 3> image_sums(const ImageView<scalar_t, MASK>& v, int64_t p0, int64_t p1) {
  T dot = 0, nx = 0, ny = 0;
  const int64_t c = v.c, hw = v.hw;
  if constexpr (MASK != kPixelMask) {  // element order is irrelevant: one flat range
    accumulate_row<T, MASK>(v.x + p0 * c, v.y + p0 * c, MASK == kNoMask ? v.m : v.m + p0 * c,
                            (p1 - p0) * c, dot, nx, ny);
  } else if (!v.nhwc) {
    for (int64_t ch = 0; ch < c; ++ch) {
      accumulate_row<T, MASK>(v.x + ch * hw + p0, v.y + ch * hw + p0, v.m + p0, p1 - p0, dot,
                              nx, ny);
    }
  } else {
    const scalar_t* x = v.x;
    const scalar_t* y = v.y;
    const scalar_t* m = v.m;
    for (int64_t p = p0; p < p1; ++p) {
      const T w2 = T(m[p]) * T(m[p]);
      for (int64_t e = p * c; e < (p + 1) * c; ++e) {
        const T xv = T(x[e]), yv = T(y[e]);
        dot += w2 * xv * yv;
        nx += w2 * xv * xv;
        ny += w2 * yv * yv;
      }
    }
  }
  return {double(dot), double(nx), double(ny)};
}

// Adds one channel row of per-pixel products into dot/nx/ny[0, n).
template <typename T, int MASK, typename scalar_t>
void accumulate_pixels(const scalar_t* x, const scalar_t* y, const scalar_t* w, int64_t n, T* dot,
                       T* nx, T* ny) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    const T w2 = weight_sq<T, MASK>(w, k), xv = T(x[k]), yv = T(y[k]);
    dot[k] += w2 * xv * yv;
    nx[k] += w2 * xv * xv;
    ny[k] += w2 * yv * yv;
  }
}

// Per-pixel {x.y, x.x, y.y} of pixels [p0, p1) into dot/nx/ny[p - p0].
template <typename T, typename scalar_t, int MASK>
void pixel_sums(const ImageView<scalar_t, MASK>& v, int64_t p0, int64_t p1, T* dot, T* nx, T* ny) {
  const int64_t len = p1 - p0, c = v.c, hw = v.hw;
  for (int64_t k = 0; k < len; ++k) dot[k] = nx[k] = ny[k] = T(0);
  if (!v.nhwc) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = ch * hw + p0;
      const scalar_t* w = MASK == kPixelMask ? v.m + p0 : (MASK == kFullMask ? v.m + off : v.m);
      accumulate_pixels<T, MASK>(v.x + off, v.y + off, w, len, dot, nx, ny);
    }
  } else {
    const scalar_t* x = v.x;
    const scalar_t* y = v.y;
    const scalar_t* m = v.m;
    for (int64_t k = 0; k < len; ++k) {
      const int64_t p = p0 + k;
      T d = 0, a = 0, b = 0;
      for (int64_t e = p * c; e < (p + 1) * c; ++e) {
        const T w2 = weight_sq<T, MASK>(m, MASK == kPixelMask ? p : e);
        const T xv = T(x[e]), yv = T(y[e]);
        d += w2 * xv * yv;
        a += w2 * xv * xv;
        b += w2 * yv * yv;
      }
      dot[k] = d;
      nx[k] = a;
      ny[k] = b;
    }
  }
}

// Sum over pixels [0, len) of the per-pixel losses 1 - cos.
template <typename T>
T sum_pixel_losses(const T* dot, const T* nx, const T* ny, int64_t len, T eps) {
  T loss = 0;
#pragma omp simd reduction(+ : loss)
  for (int64_t k = 0; k < len; ++k) loss += T(1) - cosine_coef<T>(dot[k], nx[k], ny[k], eps).cos;
  return loss;
}

// Per-pixel coefficients, in place: dot -> a, nx -> bx, ny -> by.
template <typename T>
void to_coefficients(T* dot, T* nx, T* ny, int64_t len, T eps) {
#pragma omp simd
  for (int64_t k = 0; k < len; ++k) {
    const auto c = cosine_coef<T>(dot[k], nx[k], ny[k], eps);
    dot[k] = c.a;
    nx[k] = c.bx;
    ny[k] = c.by;
  }
}

// Gradients over n contiguous elements: d loss/d x = dcos * w^2 (a y - bx x) and
// d loss/d y = dcos * w^2 (a x - by y). STEP 1: a/bx/by are per element; 0: constants.
template <int STEP, int MASK, typename T, typename scalar_t>
void grad_row(const scalar_t* x, const scalar_t* y, const scalar_t* w, scalar_t* gx, scalar_t* gy,
              int64_t n, T dcos, const T* a, const T* bx, const T* by) {
#ifdef FASTGAN_HAVE_AVX2_ROWS
  if constexpr (std::is_same_v<scalar_t, float> && STEP == 0) {
    constexpr bool kWeighted = MASK != kNoMask;
    if (n >= kMinStreamedRow && (!gx || aligned32(gx)) && (!gy || aligned32(gy))) {
      avx2::cosine_grad_row<kWeighted, true>(x, y, w, gx, gy, n, dcos, a[0], bx[0], by[0]);
    } else {
      avx2::cosine_grad_row<kWeighted, false>(x, y, w, gx, gy, n, dcos, a[0], bx[0], by[0]);
    }
    return;
  }
#endif
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    const T w2d = dcos * weight_sq<T, MASK>(w, k);
    const T xv = T(x[k]), yv = T(y[k]);
    if (gx) gx[k] = scalar_t(w2d * (a[STEP * k] * yv - bx[STEP * k] * xv));
    if (gy) gy[k] = scalar_t(w2d * (a[STEP * k] * xv - by[STEP * k] * yv));
  }
}

// Gradients of pixels [p0, p1). PER_PIXEL: a/bx/by are arrays indexed by p - p0;
// otherwise a[0]/bx[0]/by[0] hold the image's coefficients.
template <bool PER_PIXEL, typename T, typename scalar_t, int MASK>
void write_grads(const ImageView<scalar_t, MASK>& v, scalar_t* gx, scalar_t* gy, int64_t p0,
                 int64_t p1, T dcos, const T* a, const T* bx, const T* by) {
  const int64_t len = p1 - p0, c = v.c, hw = v.hw;
  constexpr int kStep = PER_PIXEL ? 1 : 0;
  if (!v.nhwc) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = ch * hw + p0;
      const scalar_t* w = MASK == kPixelMask ? v.m + p0 : (MASK == kFullMask ? v.m + off : v.m);
      grad_row<kStep, MASK>(v.x + off, v.y + off, w, gx ? gx + off : nullptr,
                            gy ? gy + off : nullptr, len, dcos, a, bx, by);
    }
  } else if (!PER_PIXEL && MASK != kPixelMask) {  // constants, per-element weights: flat
    const int64_t off = p0 * c;
    grad_row<0, MASK>(v.x + off, v.y + off, MASK == kFullMask ? v.m + off : v.m,
                      gx ? gx + off : nullptr, gy ? gy + off : nullptr, len * c, dcos, a, bx, by);
  } else {
    const scalar_t* x = v.x;
    const scalar_t* y = v.y;
    const scalar_t* m = v.m;
    for (int64_t k = 0; k < len; ++k) {
      const int64_t p = p0 + k, j = PER_PIXEL ? k : 0;
      for (int64_t e = p * c; e < (p + 1) * c; ++e) {
        const T w2d = dcos * weight_sq<T, MASK>(m, MASK == kPixelMask ? p : e);
        const T xv = T(x[e]), yv = T(y[e]);
        if (gx) gx[e] = scalar_t(w2d * (a[j] * yv - bx[j] * xv));
        if (gy) gy[e] = scalar_t(w2d * (a[j] * xv - by[j] * yv));
      }
    }
  }
}

// Per-pixel losses (dim 1) of pixels [p0, p1): returns the sum of 1 - cos and, where gx /
// gy are given (image-level pointers, null when not wanted), writes their gradients for
// d loss / d cos = dcos. Float NCHW runs in registers (avx2::cosine_pixels); other types,
// NHWC and the last < 8 pixels go through per-pixel arrays in L1.
template <typename T, typename scalar_t, int MASK>
T pixel_chunk(const ImageView<scalar_t, MASK>& v, scalar_t* gx, scalar_t* gy, int64_t p0,
              int64_t p1, T dcos, T eps) {
  T loss = 0;
#ifdef FASTGAN_HAVE_AVX2_ROWS
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (!v.nhwc) {
      const float* w = MASK == kNoMask ? nullptr : v.m + p0;  // the pixel row or channel 0's row
      float* gxp = gx ? gx + p0 : nullptr;
      float* gyp = gy ? gy + p0 : nullptr;
      const bool stream = (gx || gy) && v.hw % 8 == 0 && (!gx || aligned32(gxp)) &&
                          (!gy || aligned32(gyp));
      int64_t done = 0;
      if (stream) {
        loss = avx2::cosine_pixels<MASK, true>(v.x + p0, v.y + p0, w, gxp, gyp, v.c, v.hw, p1 - p0,
                                               dcos, eps, done);
      } else {
        loss = avx2::cosine_pixels<MASK, false>(v.x + p0, v.y + p0, w, gxp, gyp, v.c, v.hw,
                                                p1 - p0, dcos, eps, done);
      }
      p0 += done;
    }
  }
#endif
  if (p0 == p1) return loss;
  T a[kPixelsPerTask], bx[kPixelsPerTask], by[kPixelsPerTask];
  pixel_sums<T>(v, p0, p1, a, bx, by);
  loss += sum_pixel_losses<T>(a, bx, by, p1 - p0, eps);
  if (gx || gy) {
    to_coefficients(a, bx, by, p1 - p0, eps);
    write_grads<true>(v, gx, gy, p0, p1, dcos, a, bx, by);
  }
  return loss;
}

struct Plan {
  ImageBatch b;
  int64_t tasks_per_image, image, mask_image;
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

// Calls body(view_of) with view_of(img) -> the ImageView of image img, its scalar type and
// mask mode resolved at compile time.
template <typename Body>
void with_image_views(const Plan& pl, Body&& body) {
  const ImageBatch& b = pl.b;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(), "cosine_loss", [&] {
    auto run = [&](auto mask_c) {
      constexpr int M = decltype(mask_c)::value;
      const scalar_t* x = b.x.const_data_ptr<scalar_t>();
      const scalar_t* y = b.y.const_data_ptr<scalar_t>();
      const scalar_t* m = b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
      body([&, x, y, m](int64_t img) {
        return ImageView<scalar_t, M>{x + img * pl.image, y + img * pl.image,
                                      m ? m + img * pl.mask_image : nullptr, b.c, b.hw, b.nhwc};
      });
    };
    switch (b.mask_mode) {
      case kNoMask: run(std::integral_constant<int, kNoMask>{}); break;
      case kPixelMask: run(std::integral_constant<int, kPixelMask>{}); break;
      default: run(std::integral_constant<int, kFullMask>{}); break;
    }
  });
}

// Pixels [p0, p1) of task t (chunk t % tasks_per_image of image t / tasks_per_image).
inline std::pair<int64_t, int64_t> task_pixels(const Plan& pl, int64_t t) {
  const int64_t p0 = (t % pl.tasks_per_image) * kPixelsPerTask;
  return {p0, std::min(pl.b.hw, p0 + kPixelsPerTask)};
}

// Runs fn(view, t, img, p0, p1) for every (image, pixel chunk) task t in parallel.
template <typename Fn>
void for_each_chunk(const Plan& pl, Fn&& fn) {
  with_image_views(pl, [&](auto view_of) {
    at::parallel_for(0, pl.b.n * pl.tasks_per_image, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t img = t / pl.tasks_per_image;
        const auto [p0, p1] = task_pixels(pl, t);
        fn(view_of(img), t, img, p0, p1);
      }
      stream_fence();  // the gradient loops' streaming stores: once per thread, not per row
    });
  });
}

// Per-task partial sums -> (reduced loss in x's dtype, per-image stats for dim 0).
std::tuple<at::Tensor, at::Tensor> finish_forward(const Plan& pl,
                                                  const std::vector<std::array<double, 3>>& partial,
                                                  int64_t dim, double eps, int64_t reduction) {
  const ImageBatch& b = pl.b;
  const auto opmath = b.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto stats = at::empty({dim == 0 ? b.n : 0, 3}, b.x.options().dtype(at::kDouble));
  double* sp = stats.data_ptr<double>();
  std::vector<double> per_image(b.n);
  double total = 0.0;
  for (int64_t i = 0; i < b.n; ++i) {
    std::array<double, 3> s{0.0, 0.0, 0.0};
    for (int64_t k = 0; k < pl.tasks_per_image; ++k) {
      for (int j = 0; j < 3; ++j) s[j] += partial[i * pl.tasks_per_image + k][j];
    }
    if (dim == 0) {
      for (int j = 0; j < 3; ++j) sp[i * 3 + j] = s[j];
      per_image[i] = 1.0 - cosine_coef<double>(s[0], s[1], s[2], eps).cos;
      total += per_image[i];
    } else {
      per_image[i] = s[0] / double(b.hw);  // `none` is the per-image mean over pixels
      total += s[0];
    }
  }
  at::Tensor out;
  if (reduction == kNone) {
    out = at::tensor(per_image, b.x.options().dtype(at::kDouble));
  } else {
    const double count = dim == 0 ? double(b.n) : double(b.n) * double(b.hw);
    out = at::scalar_tensor(reduction == kMean ? total / count : total,
                            b.x.options().dtype(at::kDouble));
  }
  if (dim == 1) stats = at::empty({0}, stats.options());
  return {out.to(b.x.scalar_type()), stats.to(opmath)};
}

// d loss / d cos of each image (of each pixel for dim 1) for upstream gradients g.
std::vector<double> dcos_per_image(const double* g, int64_t n, int64_t hw, int64_t dim,
                                   int64_t reduction) {
  const double per_pixel = dim == 1 ? double(hw) : 1.0;
  std::vector<double> dcos(n);
  for (int64_t i = 0; i < n; ++i) {
    const double gi = reduction == kNone   ? g[i] / per_pixel
                      : reduction == kMean ? g[0] / (double(n) * per_pixel)
                                           : g[0];
    dcos[i] = -gi;
  }
  return dcos;
}

std::tuple<at::Tensor, at::Tensor> cosine_loss_forward(const at::Tensor& x, const at::Tensor& y,
                                                       const std::optional<at::Tensor>& mask,
                                                       int64_t dim, double eps,
                                                       int64_t reduction) {
  const Plan pl = make_plan("cosine_loss_forward", x, y, mask, dim, reduction);
  const ImageBatch& b = pl.b;
  mask_weight_sums("cosine_loss_forward", b);  // for its [0, 1] check of the weights
  // dim 0: per task {x.y, x.x, y.y}; dim 1: per task {sum of per-pixel losses, 0, 0}.
  std::vector<std::array<double, 3>> partial(b.n * pl.tasks_per_image);
  for_each_chunk(pl, [&](const auto& v, int64_t t, int64_t, int64_t p0, int64_t p1) {
    using scalar_t = std::remove_cv_t<std::remove_pointer_t<decltype(v.x)>>;
    using T = opmath_t<scalar_t>;
    if (dim == 0) {
      partial[t] = image_sums<T>(v, p0, p1);
    } else {
      scalar_t* none = nullptr;
      partial[t] = {double(pixel_chunk<T>(v, none, none, p0, p1, T(0), T(eps))), 0.0, 0.0};
    }
  });

  return finish_forward(pl, partial, dim, eps, reduction);
}

std::tuple<at::Tensor, at::Tensor> cosine_loss_backward(
    const at::Tensor& grad, const at::Tensor& x, const at::Tensor& y,
    const std::optional<at::Tensor>& mask, const at::Tensor& stats, int64_t dim, double eps,
    int64_t reduction, bool need_x, bool need_y) {
  const Plan pl = make_plan("cosine_loss_backward", x, y, mask, dim, reduction);
  const ImageBatch& b = pl.b;
  TORCH_CHECK(grad.numel() == (reduction == kNone ? b.n : 1),
              "cosine_loss_backward: grad has the wrong number of elements");
  TORCH_CHECK(dim == 1 || (stats.dim() == 2 && stats.size(0) == b.n && stats.size(1) == 3),
              "cosine_loss_backward: stats must have shape (N, 3) for dim 0");
  const auto g = grad.to(at::kDouble).contiguous();
  const auto dcos = dcos_per_image(g.const_data_ptr<double>(), b.n, b.hw, dim, reduction);
  const auto st = dim == 0 ? stats.to(at::kDouble).contiguous() : at::Tensor();
  auto gx = need_x ? at::empty_like(b.x) : at::empty({0}, b.x.options());
  auto gy = need_y ? at::empty_like(b.y) : at::empty({0}, b.y.options());
  void* gxp = need_x ? gx.data_ptr() : nullptr;
  void* gyp = need_y ? gy.data_ptr() : nullptr;

  for_each_chunk(pl, [&](const auto& v, int64_t, int64_t img, int64_t p0, int64_t p1) {
    using scalar_t = std::remove_cv_t<std::remove_pointer_t<decltype(v.x)>>;
    using T = opmath_t<scalar_t>;
    const int64_t off = img * pl.image;
    scalar_t* gxi = gxp ? static_cast<scalar_t*>(gxp) + off : nullptr;
    scalar_t* gyi = gyp ? static_cast<scalar_t*>(gyp) + off : nullptr;
    const T d = T(dcos[img]);
    if (dim == 0) {
      const double* s = st.const_data_ptr<double>() + img * 3;
      const auto c = cosine_coef<T>(T(s[0]), T(s[1]), T(s[2]), T(eps));
      write_grads<false>(v, gxi, gyi, p0, p1, d, &c.a, &c.bx, &c.by);
    } else {
      pixel_chunk<T>(v, gxi, gyi, p0, p1, d, T(eps));
    }
  });
  return {gx, gy};
}

// Per image (dim 0), image-local: each image's sums, then at once its gradients, so the
// second read of the image comes from the cache (an image of x and y is 1.5 MB at
// 3x256x256 fp32: L2 / L3) instead of memory. With fewer images than 2 x threads the
// chunks of all images run in parallel in two phases (no cache reuse, all cores busy).
// The chunking, and so every sum, is the forward op's.
template <typename SumsFn, typename GradsFn>
void two_phase_per_image(const Plan& pl, SumsFn&& sums, GradsFn&& grads) {
  if (pl.b.n < 2 * int64_t(at::get_num_threads())) {
    for_each_chunk(pl, sums);
    for_each_chunk(pl, grads);
    return;
  }
  with_image_views(pl, [&](auto view_of) {
    at::parallel_for(0, pl.b.n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t img = begin; img < end; ++img) {
        const auto v = view_of(img);
        for (int64_t t = img * pl.tasks_per_image; t < (img + 1) * pl.tasks_per_image; ++t) {
          const auto [p0, p1] = task_pixels(pl, t);
          sums(v, t, img, p0, p1);
        }
        for (int64_t t = img * pl.tasks_per_image; t < (img + 1) * pl.tasks_per_image; ++t) {
          const auto [p0, p1] = task_pixels(pl, t);
          grads(v, t, img, p0, p1);
        }
      }
      stream_fence();
    });
  });
}

// The image's {x.y, x.x, y.y} from its chunk sums, in the order finish_forward adds them.
std::array<double, 3> image_total(const std::vector<std::array<double, 3>>& partial,
                                  int64_t img, int64_t tasks_per_image) {
  std::array<double, 3> s{0.0, 0.0, 0.0};
  for (int64_t k = 0; k < tasks_per_image; ++k) {
    for (int j = 0; j < 3; ++j) s[j] += partial[img * tasks_per_image + k][j];
  }
  return s;
}

// The loss and d loss / d x, d loss / d y for an upstream gradient of one, without a
// second trip to memory: per pixel (dim 1) each chunk's sums, loss and gradients stay in
// L1, so training reads x and y once instead of three times; per image (dim 0) see
// two_phase_per_image (twice, the second time from the cache).
std::tuple<at::Tensor, at::Tensor, at::Tensor> cosine_loss_forward_with_grad(
    const at::Tensor& x, const at::Tensor& y, const std::optional<at::Tensor>& mask, int64_t dim,
    double eps, int64_t reduction, bool need_x, bool need_y) {
  const Plan pl = make_plan("cosine_loss_forward_with_grad", x, y, mask, dim, reduction);
  const ImageBatch& b = pl.b;
  mask_weight_sums("cosine_loss_forward_with_grad", b);  // for its [0, 1] check
  const std::vector<double> ones(reduction == kNone ? b.n : 1, 1.0);
  const auto dcos = dcos_per_image(ones.data(), b.n, b.hw, dim, reduction);
  auto gx = need_x ? at::empty_like(b.x) : at::empty({0}, b.x.options());
  auto gy = need_y ? at::empty_like(b.y) : at::empty({0}, b.y.options());
  void* gxp = need_x ? gx.data_ptr() : nullptr;
  void* gyp = need_y ? gy.data_ptr() : nullptr;
  std::vector<std::array<double, 3>> partial(b.n * pl.tasks_per_image);
  auto grad_ptrs = [&](const auto& v, int64_t img) {
    using scalar_t = std::remove_cv_t<std::remove_pointer_t<decltype(v.x)>>;
    const int64_t off = img * pl.image;
    return std::pair<scalar_t*, scalar_t*>{gxp ? static_cast<scalar_t*>(gxp) + off : nullptr,
                                           gyp ? static_cast<scalar_t*>(gyp) + off : nullptr};
  };

  if (dim == 0) {
    auto sums = [&](const auto& v, int64_t t, int64_t, int64_t p0, int64_t p1) {
      using T = opmath_t<std::remove_cv_t<std::remove_pointer_t<decltype(v.x)>>>;
      partial[t] = image_sums<T>(v, p0, p1);
    };
    auto grads = [&](const auto& v, int64_t, int64_t img, int64_t p0, int64_t p1) {
      using T = opmath_t<std::remove_cv_t<std::remove_pointer_t<decltype(v.x)>>>;
      // Rounded through opmath as the forward op stores its stats, so both paths agree.
      const auto s = image_total(partial, img, pl.tasks_per_image);
      const auto c = cosine_coef<T>(T(s[0]), T(s[1]), T(s[2]), T(eps));
      const auto [gxi, gyi] = grad_ptrs(v, img);
      write_grads<false>(v, gxi, gyi, p0, p1, T(dcos[img]), &c.a, &c.bx, &c.by);
    };
    two_phase_per_image(pl, sums, grads);
  } else {
    for_each_chunk(pl, [&](const auto& v, int64_t t, int64_t img, int64_t p0, int64_t p1) {
      using T = opmath_t<std::remove_cv_t<std::remove_pointer_t<decltype(v.x)>>>;
      const auto [gxi, gyi] = grad_ptrs(v, img);
      partial[t] = {double(pixel_chunk<T>(v, gxi, gyi, p0, p1, T(dcos[img]), T(eps))), 0.0, 0.0};
    });
  }
  return {std::get<0>(finish_forward(pl, partial, dim, eps, reduction)), gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("cosine_loss_forward", &cosine_loss_forward);
  m.impl("cosine_loss_backward", &cosine_loss_backward);
  m.impl("cosine_loss_forward_with_grad", &cosine_loss_forward_with_grad);
}

}  // namespace fastgan::cpu
