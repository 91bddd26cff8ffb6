// CUDA kernels of the cosine-similarity loss 1 - cos(w*x, w*y), per image over
// (C, H, W) (dim 0) or per pixel over C (dim 1); the semantics are those of
// csrc/cpu/cosine_loss.cpp.
//
// Bytes (S = N*C*H*W elements of b bytes; the mask adds S b, or S/C b per pixel):
//   dim 0 forward:  reads x, y once (2S b), writes 3 sums per (image, chunk);
//                   a one-block kernel writes the loss and the (N, 3) stats.
//   dim 0 backward: reads x, y, writes grad_x and/or grad_y (3-4S b), one pass.
//   dim 1:          one thread per pixel (V pixels in NCHW) sums over C, so the
//                   forward reads x, y once; the backward recomputes the
//                   pixel's sums and re-reads its C values from L1/L2 to
//                   write the gradients, instead of storing a map.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/cosine_loss.h"
#include "cuda/loss_kernels.cuh"

namespace fastgan::cuda {
namespace {

// d loss / d cos for image img (per pixel for dim 1), folding in the reduction.
__device__ __forceinline__ double dloss_dcos(const AnyFloat& g, int64_t img, int64_t reduction,
                                             int64_t n, double per_pixel) {
  const double gi = reduction == kNone   ? g[img] / per_pixel
                    : reduction == kMean ? g[0] / (double(n) * per_pixel)
                                         : g[0];
  return -gi;
}

// dot += w2 x y, nx += w2 x x, ny += w2 y y: one element's share of the weighted sums.
template <typename T>
__device__ __forceinline__ void add_cosine_sums(T w2, T x, T y, T& dot, T& nx, T& ny) {
  dot += w2 * x * y;
  nx += w2 * x * x;
  ny += w2 * y * y;
}

// grad_x = w2d (a y - bx x), grad_y = w2d (a x - by y), w2d = d loss / d cos * w^2.
template <typename T>
__device__ __forceinline__ void cosine_grads(T w2d, T a, T bx, T by, T x, T y, T& gx, T& gy) {
  gx = w2d * (a * y - bx * x);
  gy = w2d * (a * x - by * y);
}

// ---------------------------------------------------------------------------
// dim 0: flat kernels over each image.

// acc += w^2 {x y, x x, y y}
template <typename T>
struct CosineSums {
  static constexpr int K = 3;
  __device__ __forceinline__ void operator()(T (&acc)[K], T x, T y, T w) const {
    add_cosine_sums(w * w, x, y, acc[0], acc[1], acc[2]);
  }
};

template <typename scalar_t>
struct CosineImageFinish {
  using T = opmath_t<scalar_t>;
  static constexpr int kTotals = 1;
  scalar_t* loss;
  T* stats;
  int64_t n, reduction;
  double eps;
  __device__ void image(int64_t i, const double (&s)[3], double (&tot)[1]) const {
#pragma unroll
    for (int j = 0; j < 3; ++j) stats[i * 3 + j] = T(s[j]);
    const double li = 1.0 - cosine_coef<double>(s[0], s[1], s[2], eps).cos;
    if (reduction == kNone) loss[i] = to_scalar<scalar_t>(li);
    tot[0] += li;
  }
  __device__ void total(const double (&t)[1]) const {
    if (reduction == kNone) return;
    loss[0] = to_scalar<scalar_t>(reduction == kMean ? t[0] / double(n) : t[0]);
  }
};

// grad_x = d w^2 (a y - bx x), grad_y = d w^2 (a x - by y) with the image's coefficients.
template <typename T>
struct CosineImageGrad {
  struct Coef {
    T d, a, bx, by;
    __device__ __forceinline__ void operator()(T x, T y, T w, T& gx, T& gy) const {
      cosine_grads(d * (w * w), a, bx, by, x, y, gx, gy);
    }
  };
  AnyFloat grad, stats;  // stats: (N, 3) flattened
  int64_t n, reduction;
  double eps;
  __device__ void prepare(uint32_t img, int lane, Coef& c) const {
    if (lane != 0) return;
    const int64_t i = int64_t(img) * 3;
    const auto cf = cosine_coef<T>(T(stats[i]), T(stats[i + 1]), T(stats[i + 2]), T(eps));
    c = Coef{T(dloss_dcos(grad, img, reduction, n, 1.0)), cf.a, cf.bx, cf.by};
  }
};

// ---------------------------------------------------------------------------
// dim 1: a thread owns V pixels (V > 1 only for NCHW with H*W % V == 0).

enum PixelMask : int { kPxNone = 0, kPxPixel = 1, kPxFull = 2 };

struct PixelShape {
  int64_t n;
  uint32_t c, hw, image, mask_image;
  uint32_t chunk;   // pixels per block
  uint32_t chunks;  // blocks per image
  int64_t blocks() const { return n * chunks; }
};

// Pixels per NCHW vector: at most 4, which keeps the backward's registers low.
template <typename scalar_t>
constexpr int kPixVec = kVec<scalar_t> < 4 ? kVec<scalar_t> : 4;

template <typename scalar_t>
PixelShape pixel_shape(const ImageBatch& b, const char* op) {
  const FlatShape f = flat_shape<scalar_t>(b, op);  // checks the index ranges
  const int64_t step = int64_t(kThreads) * kPixVec<scalar_t>;
  // About the flat kernels' minimum chunk in elements, and at most kMaxChunks per image.
  const int64_t min_px = ceil_div(int64_t(kThreads) * kMinVecsPerThread * kVec<scalar_t>,
                                  std::max<int64_t>(1, b.c));
  const int64_t chunk = round_up(std::max(min_px, ceil_div(b.hw, kMaxChunks)), step);
  const int64_t chunks = std::max<int64_t>(1, ceil_div(b.hw, chunk));
  TORCH_CHECK(b.n * chunks <= std::numeric_limits<int32_t>::max(), op, ": batch too large");
  return {b.n, f.c, f.hw, f.image, f.mask_image, uint32_t(chunk), uint32_t(chunks)};
}

// Calls fn(mask, nhwc, V) as integral constants for the batch's layout.
template <typename scalar_t, typename Fn>
void dispatch_pixel(const ImageBatch& b, Fn&& fn) {
  auto with_layout = [&](auto mc) {
    if (b.nhwc) {
      fn(mc, std::true_type{}, std::integral_constant<int, 1>{});
    } else if (b.hw % kPixVec<scalar_t> == 0) {
      fn(mc, std::false_type{}, std::integral_constant<int, kPixVec<scalar_t>>{});
    } else {
      fn(mc, std::false_type{}, std::integral_constant<int, 1>{});
    }
  };
  if (b.mask_mode == kNoMask) {
    with_layout(std::integral_constant<int, kPxNone>{});
  } else if (b.mask_mode == kPixelMask) {
    with_layout(std::integral_constant<int, kPxPixel>{});
  } else {
    with_layout(std::integral_constant<int, kPxFull>{});
  }
}

template <bool NHWC>
__device__ __forceinline__ uint32_t elem(const PixelShape& s, uint32_t ch, uint32_t p) {
  return NHWC ? p * s.c + ch : ch * s.hw + p;
}

// Squared mask weights m[0] .. m[V-1].
template <int V, typename scalar_t, typename T>
__device__ __forceinline__ void load_weights_sq(const scalar_t* m, T (&w2)[V]) {
  load<V>(m, w2);
#pragma unroll
  for (int k = 0; k < V; ++k) w2[k] *= w2[k];
}

// Squared pixel-mask weights of pixels p .. p+V-1 (1 without a pixel mask).
template <int MASK, int V, typename scalar_t, typename T>
__device__ __forceinline__ void pixel_weights_sq(const scalar_t* m, uint32_t p, T (&w2)[V]) {
  if constexpr (MASK == kPxPixel) {
    load_weights_sq(m + p, w2);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) w2[k] = T(1);
  }
}

// x, y and the squared weights w2 of elements e .. e+V-1 (one channel of V pixels):
// from a full mask, else the pixels' wp2 (from pixel_weights_sq).
template <int MASK, int V, typename scalar_t, typename T>
__device__ __forceinline__ void load_channel(const scalar_t* x, const scalar_t* y,
                                             const scalar_t* m, uint32_t e, const T (&wp2)[V],
                                             T (&xv)[V], T (&yv)[V], T (&w2)[V]) {
  load<V>(x + e, xv);
  load<V>(y + e, yv);
  if constexpr (MASK == kPxFull) {
    load_weights_sq(m + e, w2);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) w2[k] = wp2[k];
  }
}

// {x.y, x.x, y.y} over the channels of pixels p .. p+V-1, with w^2 weights
// (wp2 from pixel_weights_sq).
template <int MASK, bool NHWC, int V, typename scalar_t, typename T>
__device__ __forceinline__ void pixel_sums(const scalar_t* x, const scalar_t* y, const scalar_t* m,
                                           const PixelShape& s, uint32_t p, const T (&wp2)[V],
                                           T (&dot)[V], T (&nx)[V], T (&ny)[V]) {
#pragma unroll
  for (int k = 0; k < V; ++k) dot[k] = nx[k] = ny[k] = T(0);
  for (uint32_t ch = 0; ch < s.c; ++ch) {
    T xv[V], yv[V], w2[V];
    load_channel<MASK>(x, y, m, elem<NHWC>(s, ch, p), wp2, xv, yv, w2);
#pragma unroll
    for (int k = 0; k < V; ++k) add_cosine_sums(w2[k], xv[k], yv[k], dot[k], nx[k], ny[k]);
  }
}

// One block per (image, pixel chunk): part[block] = sum of the chunk's pixel losses.
template <typename scalar_t, int MASK, bool NHWC, int V>
__global__ void __launch_bounds__(kThreads)
    pixel_loss_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y,
                      const scalar_t* __restrict__ m, PixelShape s, opmath_t<scalar_t> eps,
                      opmath_t<scalar_t>* __restrict__ part) {
  using T = opmath_t<scalar_t>;
  const uint32_t img = blockIdx.x / s.chunks, chunk = blockIdx.x - img * s.chunks;
  seek_image<MASK != kPxNone>(s, img, x, y, m);
  const uint32_t p0 = chunk * s.chunk, p1 = min(s.hw, p0 + s.chunk);
  T acc[1] = {T(0)};
  for (uint32_t p = p0 + threadIdx.x * V; p < p1; p += kThreads * V) {
    T wp2[V], dot[V], nx[V], ny[V];
    pixel_weights_sq<MASK>(m, p, wp2);
    pixel_sums<MASK, NHWC, V>(x, y, m, s, p, wp2, dot, nx, ny);
#pragma unroll
    for (int k = 0; k < V; ++k) acc[0] += T(1) - cosine_coef<T>(dot[k], nx[k], ny[k], eps).cos;
  }
  block_sum<kThreads>(acc);
  if (threadIdx.x == 0) part[blockIdx.x] = acc[0];
}

// Same blocks: recompute each pixel's sums, then write its C gradients.
template <typename scalar_t, int MASK, bool NHWC, int V>
__global__ void __launch_bounds__(kThreads)
    pixel_grad_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y,
                      const scalar_t* __restrict__ m, PixelShape s, opmath_t<scalar_t> eps,
                      AnyFloat grad, int64_t reduction, scalar_t* __restrict__ gx,
                      scalar_t* __restrict__ gy) {
  using T = opmath_t<scalar_t>;
  const uint32_t img = blockIdx.x / s.chunks, chunk = blockIdx.x - img * s.chunks;
  const T d = T(dloss_dcos(grad, img, reduction, s.n, double(s.hw)));
  seek_image<MASK != kPxNone>(s, img, x, y, m, gx, gy);
  const uint32_t p0 = chunk * s.chunk, p1 = min(s.hw, p0 + s.chunk);
  for (uint32_t p = p0 + threadIdx.x * V; p < p1; p += kThreads * V) {
    T wp2[V], dot[V], nx[V], ny[V];
    pixel_weights_sq<MASK>(m, p, wp2);
    pixel_sums<MASK, NHWC, V>(x, y, m, s, p, wp2, dot, nx, ny);
    CosineCoef<T> cf[V];
#pragma unroll
    for (int k = 0; k < V; ++k) cf[k] = cosine_coef<T>(dot[k], nx[k], ny[k], eps);
    for (uint32_t ch = 0; ch < s.c; ++ch) {
      const uint32_t e = elem<NHWC>(s, ch, p);
      T xv[V], yv[V], w2[V], ox[V], oy[V];
      load_channel<MASK>(x, y, m, e, wp2, xv, yv, w2);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        cosine_grads(d * w2[k], cf[k].a, cf[k].bx, cf[k].by, xv[k], yv[k], ox[k], oy[k]);
      }
      if (gx) store<V>(gx + e, ox);
      if (gy) store<V>(gy + e, oy);
    }
  }
}

template <typename scalar_t>
struct CosinePixelFinish {
  static constexpr int kTotals = 1;
  scalar_t* loss;
  int64_t n, reduction;
  double hw;
  __device__ void image(int64_t i, const double (&s)[1], double (&tot)[1]) const {
    const double li = s[0] / hw;  // `none` is the per-image mean over pixels
    if (reduction == kNone) loss[i] = to_scalar<scalar_t>(li);
    tot[0] += li;
  }
  __device__ void total(const double (&t)[1]) const {
    if (reduction == kNone) return;
    loss[0] = to_scalar<scalar_t>(reduction == kMean ? t[0] / double(n) : t[0] * hw);
  }
};

// ---------------------------------------------------------------------------

ImageBatch prepare(const char* op, const at::Tensor& x, const at::Tensor& y,
                   const std::optional<at::Tensor>& mask, int64_t dim, int64_t reduction) {
  check_reduction(op, reduction);
  TORCH_CHECK(dim == 0 || dim == 1, op, ": dim code must be 0 (per image) or 1 (per pixel)");
  return prepare_aligned_images(op, x, y, mask);
}

std::tuple<at::Tensor, at::Tensor> cosine_loss_forward(const at::Tensor& x_in,
                                                       const at::Tensor& y_in,
                                                       const std::optional<at::Tensor>& mask,
                                                       int64_t dim, double eps,
                                                       int64_t reduction) {
  constexpr const char* op = "cosine_loss_forward";
  const c10::cuda::CUDAGuard guard(x_in.device());
  const ImageBatch b = prepare(op, x_in, y_in, mask, dim, reduction);
  const auto opts = b.x.options().dtype(opmath_type(b));
  auto loss = empty_loss(b, reduction);
  auto stats = dim == 0 ? at::empty({b.n, 3}, opts) : at::empty({0}, opts);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(), op, [&] {
    using T = opmath_t<scalar_t>;
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = mask_data<scalar_t>(b);
    scalar_t* out = loss.mutable_data_ptr<scalar_t>();
    if (dim == 0) {
      const FlatShape s = flat_shape<scalar_t>(b, op);
      auto part = at::empty({s.blocks(), 3}, opts);
      if (s.blocks() > 0) {
        dispatch_flat_mask(b, [&](auto mc) {
          flat_partials_kernel<scalar_t, decltype(mc)::value><<<s.blocks(), kThreads, 0, stream>>>(
              x, y, m, s, CosineSums<T>{}, part.mutable_data_ptr<T>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      }
      launch_finish<3, T>(part, b.n, s.chunks,
                          CosineImageFinish<scalar_t>{out, stats.mutable_data_ptr<T>(), b.n,
                                                      reduction, eps},
                          stream);
    } else {
      const PixelShape s = pixel_shape<scalar_t>(b, op);
      auto part = at::empty({s.blocks(), 1}, opts);
      if (s.blocks() > 0) {
        dispatch_pixel<scalar_t>(b, [&](auto mc, auto nhwc, auto vc) {
          pixel_loss_kernel<scalar_t, decltype(mc)::value, decltype(nhwc)::value,
                            decltype(vc)::value>
              <<<s.blocks(), kThreads, 0, stream>>>(x, y, m, s, T(eps), part.mutable_data_ptr<T>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      }
      launch_finish<1, T>(part, b.n, s.chunks,
                          CosinePixelFinish<scalar_t>{out, b.n, reduction, double(b.hw)}, stream);
    }
  });
  return {loss, stats};
}

std::tuple<at::Tensor, at::Tensor> cosine_loss_backward(
    const at::Tensor& grad, const at::Tensor& x_in, const at::Tensor& y_in,
    const std::optional<at::Tensor>& mask, const at::Tensor& stats, int64_t dim, double eps,
    int64_t reduction, bool need_x, bool need_y) {
  constexpr const char* op = "cosine_loss_backward";
  const c10::cuda::CUDAGuard guard(x_in.device());
  const ImageBatch b = prepare(op, x_in, y_in, mask, dim, reduction);
  check_grad_numel(op, grad, b, reduction);
  TORCH_CHECK(dim == 1 || (stats.dim() == 2 && stats.size(0) == b.n && stats.size(1) == 3), op,
              ": stats must have shape (N, 3) for dim 0");
  const at::Tensor g = grad.reshape({-1});
  const at::Tensor st = dim == 0 ? stats.contiguous().reshape({-1}) : g;
  const AnyFloat gv = any_float(g, b.x, op, "grad"), sv = any_float(st, b.x, op, "stats");
  auto gx = need_x ? at::empty_like(b.x) : at::empty({0}, b.x.options());
  auto gy = need_y ? at::empty_like(b.y) : at::empty({0}, b.y.options());
  if (!(need_x || need_y) || b.x.numel() == 0) return {gx, gy};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(), op, [&] {
    using T = opmath_t<scalar_t>;
    const scalar_t* x = b.x.const_data_ptr<scalar_t>();
    const scalar_t* y = b.y.const_data_ptr<scalar_t>();
    const scalar_t* m = mask_data<scalar_t>(b);
    scalar_t* gxp = need_x ? gx.mutable_data_ptr<scalar_t>() : nullptr;
    scalar_t* gyp = need_y ? gy.mutable_data_ptr<scalar_t>() : nullptr;
    if (dim == 0) {
      const FlatShape s = flat_shape<scalar_t>(b, op);
      dispatch_flat_mask(b, [&](auto mc) {
        flat_pointwise_kernel<scalar_t, decltype(mc)::value><<<s.blocks(), kThreads, 0, stream>>>(
            x, y, m, s, CosineImageGrad<T>{gv, sv, b.n, reduction, eps}, gxp, gyp);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    } else {
      const PixelShape s = pixel_shape<scalar_t>(b, op);
      dispatch_pixel<scalar_t>(b, [&](auto mc, auto nhwc, auto vc) {
        pixel_grad_kernel<scalar_t, decltype(mc)::value, decltype(nhwc)::value, decltype(vc)::value>
            <<<s.blocks(), kThreads, 0, stream>>>(x, y, m, s, T(eps), gv, reduction, gxp, gyp);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    }
  });
  return {gx, gy};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("cosine_loss_forward", &cosine_loss_forward);
  m.impl("cosine_loss_backward", &cosine_loss_backward);
}

}  // namespace fastgan::cuda
