// Building blocks shared by the CUDA loss kernels (masked_loss.cu, cosine_loss.cu).
//
// Each image is a dense block of C*H*W elements (NCHW or NHWC, see ImageBatch).
// A reduction takes two launches: one block per (image, chunk) writes K partial
// sums, then a single block finishes the per-image values and the batch
// reduction on the device. Chunk sizes depend only on shape and dtype, and every
// sum has a fixed order, so results are deterministic on any GPU.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/loss_common.h"

#include "cuda/vector_io.cuh"

namespace fastgan::cuda {

constexpr int kThreads = 256;         // threads of the main kernels
constexpr int kFinishThreads = 1024;  // threads of the single finishing block
constexpr int kMinVecsPerThread = 4;  // smallest chunk: 4 vectors of 16 bytes per thread
constexpr int64_t kMaxChunks = 1024;  // chunks per image, so the finishing block stays quick

// Rounds through opmath like the CPU code does (double -> float -> half).
template <typename scalar_t>
__device__ __forceinline__ scalar_t to_scalar(double v) {
  return static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(v));
}

// Sum over the block in a fixed order; the result is valid in thread 0.
template <int NT, int K, typename T>
__device__ __forceinline__ void block_sum(T (&v)[K]) {
  constexpr int kWarps = NT / 32;
  __shared__ T sh[K][kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < K; ++j) {
    for (int off = 16; off > 0; off /= 2) v[j] += __shfl_down_sync(0xffffffffu, v[j], off);
    if (lane == 0) sh[j][warp] = v[j];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      v[j] = lane < kWarps ? sh[j][lane] : T(0);
      for (int off = 16; off > 0; off /= 2) v[j] += __shfl_down_sync(0xffffffffu, v[j], off);
    }
  }
}

// A small device tensor of any floating dtype (upstream gradient, saved sums),
// read as double inside a kernel: no host sync and no cast kernel.
struct AnyFloat {
  const void* data;
  int64_t stride;
  int code;  // 0 float, 1 double, 2 half, 3 bfloat16
  __device__ double operator[](int64_t i) const {
    i *= stride;
    switch (code) {
      case 0: return static_cast<const float*>(data)[i];
      case 1: return static_cast<const double*>(data)[i];
      case 2: return static_cast<float>(static_cast<const at::Half*>(data)[i]);
      default: return static_cast<float>(static_cast<const at::BFloat16*>(data)[i]);
    }
  }
};

// t must stay alive until the launch; 1-D views keep their stride (expanded grads: 0).
inline AnyFloat any_float(const at::Tensor& t, const at::Tensor& x, const char* op,
                          const char* name) {
  TORCH_CHECK(t.device() == x.device(), op, ": ", name, " must be on x's device ", x.device(),
              ", got ", t.device());
  TORCH_CHECK(t.dim() <= 1, op, ": ", name, " must be flattened first");
  int code = 0;
  switch (t.scalar_type()) {
    case at::kFloat: code = 0; break;
    case at::kDouble: code = 1; break;
    case at::kHalf: code = 2; break;
    case at::kBFloat16: code = 3; break;
    default:
      TORCH_CHECK(false, op, ": ", name, " must be a floating tensor, got ", t.scalar_type());
  }
  return {t.const_data_ptr(), t.dim() == 1 ? t.stride(0) : 0, code};
}

// Vector loads need 16-byte aligned bases; only a view into an odd offset is copied.
inline at::Tensor aligned16(const at::Tensor& t) {
  if (!t.defined() || reinterpret_cast<uintptr_t>(t.const_data_ptr()) % 16 == 0) return t;
  return t.clone();  // preserves the dense layout, fresh (aligned) storage
}

// prepare_images, then aligned16 on every tensor the kernels read with vector loads.
inline ImageBatch prepare_aligned_images(const char* op, const at::Tensor& x, const at::Tensor& y,
                                         const std::optional<at::Tensor>& mask) {
  ImageBatch b = prepare_images(op, x, y, mask);
  b.x = aligned16(b.x);
  b.y = aligned16(b.y);
  b.mask = aligned16(b.mask);
  return b;
}

// The mask's data, or null without a mask.
template <typename scalar_t>
const scalar_t* mask_data(const ImageBatch& b) {
  return b.mask.defined() ? b.mask.const_data_ptr<scalar_t>() : nullptr;
}

// Accumulation dtype of the saved sums: double for double inputs, else float.
inline at::ScalarType opmath_type(const ImageBatch& b) {
  return b.x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// The upstream gradient of a reduced loss: one value per image for `none`, else one.
inline void check_grad_numel(const char* op, const at::Tensor& grad, const ImageBatch& b,
                             int64_t reduction) {
  TORCH_CHECK(grad.numel() == (reduction == kNone ? b.n : 1), op,
              ": grad has the wrong number of elements");
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Moves a block's pointers to image img of s (a FlatShape or a kernel's own shape with
// the fields image and mask_image): x, y and each non-null output by s.image elements,
// m by s.mask_image unless the kernel has no mask (then m may be null).
template <bool HAS_MASK, typename Shape, typename In, typename... Out>
__device__ __forceinline__ void seek_image(const Shape& s, uint32_t img, In& x, In& y, In& m,
                                           Out&... out) {
  const int64_t off = int64_t(img) * s.image;
  x += off;
  y += off;
  const auto seek_out = [off](auto& p) {
    if (p) p += off;
  };
  (seek_out(out), ...);
  if constexpr (HAS_MASK) m += int64_t(img) * s.mask_image;
}

// ---------------------------------------------------------------------------
// Flat kernels: element e of an image, in memory order, whatever the layout.

// How element e finds its mask weight.
enum FlatMask : int { kFlatNone = 0, kFlatFull = 1, kFlatPixelNCHW = 2, kFlatPixelNHWC = 3 };

struct FlatShape {
  int64_t n;            // images
  uint32_t image;       // elements per image
  uint32_t mask_image;  // elements per mask image
  uint32_t c, hw;
  uint32_t chunk;   // elements per block
  uint32_t chunks;  // blocks per image
  int64_t blocks() const { return n * chunks; }
};

template <typename scalar_t>
FlatShape flat_shape(const ImageBatch& b, const char* op) {
  const int64_t image = b.c * b.hw;
  TORCH_CHECK(image <= std::numeric_limits<int32_t>::max(), op,
              ": images of more than 2^31 elements are not supported");
  const int64_t step = int64_t(kThreads) * kVec<scalar_t>;
  const int64_t chunk =
      std::max(step * kMinVecsPerThread, round_up(ceil_div(image, kMaxChunks), step));
  const int64_t chunks = std::max<int64_t>(1, ceil_div(image, chunk));
  TORCH_CHECK(b.n * chunks <= std::numeric_limits<int32_t>::max(), op, ": batch too large");
  FlatShape s{};
  s.n = b.n;
  s.image = uint32_t(image);
  s.mask_image = uint32_t(b.mask_mode == kPixelMask ? b.hw : image);
  s.c = uint32_t(b.c);
  s.hw = uint32_t(b.hw);
  s.chunk = uint32_t(chunk);
  s.chunks = uint32_t(chunks);
  return s;
}

// Calls fn(std::integral_constant<int, FlatMask>) for the batch's mask.
template <typename Fn>
void dispatch_flat_mask(const ImageBatch& b, Fn&& fn) {
  if (b.mask_mode == kNoMask) {
    fn(std::integral_constant<int, kFlatNone>{});
  } else if (b.mask_mode == kFullMask) {
    fn(std::integral_constant<int, kFlatFull>{});
  } else if (b.nhwc) {
    fn(std::integral_constant<int, kFlatPixelNHWC>{});
  } else {
    fn(std::integral_constant<int, kFlatPixelNCHW>{});
  }
}

// Weights of elements e .. e+W-1 of one image (m points at the image's mask).
template <int MASK, int W, typename scalar_t, typename T>
__device__ __forceinline__ void load_weights(const scalar_t* m, uint32_t e, const FlatShape& s,
                                             T (&w)[W]) {
  if constexpr (MASK == kFlatNone) {
#pragma unroll
    for (int k = 0; k < W; ++k) w[k] = T(1);
  } else if constexpr (MASK == kFlatFull) {
    load<W>(m + e, w);
  } else if constexpr (MASK == kFlatPixelNCHW) {
    // A pixel mask is re-read once per channel; those reads hit L2.
    uint32_t p = e % s.hw;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      w[k] = static_cast<T>(m[p]);
      if (++p == s.hw) p = 0;
    }
  } else {
    uint32_t p = e / s.c, r = e - p * s.c;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      w[k] = static_cast<T>(m[p]);
      if (++r == s.c) r = 0, ++p;
    }
  }
}

// x, y and the mask weights of elements e .. e+W-1 of one image, in opmath.
template <int MASK, int W, typename scalar_t, typename T>
__device__ __forceinline__ void load_flat(const scalar_t* x, const scalar_t* y, const scalar_t* m,
                                          uint32_t e, const FlatShape& s, T (&xv)[W], T (&yv)[W],
                                          T (&w)[W]) {
  load<W>(x + e, xv);
  load<W>(y + e, yv);
  load_weights<MASK>(m, e, s, w);
}

// Runs f(integral_constant<int, W>, e) over elements [e0, e1) of an image: a
// scalar head up to 16-byte alignment of `base + e`, V-wide vectors, a scalar
// tail. Every tensor read or written this way shares base's alignment.
template <int V, typename scalar_t, typename F>
__device__ __forceinline__ void for_each_in_chunk(const scalar_t* base, uint32_t e0, uint32_t e1,
                                                  F&& f) {
  const uint32_t mis = uint32_t(reinterpret_cast<uintptr_t>(base + e0) / sizeof(scalar_t)) % V;
  const uint32_t head = min(e1 - e0, (V - mis) % V);
  const uint32_t b0 = e0 + head, b1 = b0 + (e1 - b0) / V * V;
  if (threadIdx.x < head) f(std::integral_constant<int, 1>{}, e0 + threadIdx.x);
  for (uint32_t e = b0 + threadIdx.x * V; e < b1; e += kThreads * V) {
    f(std::integral_constant<int, V>{}, e);
  }
  if (threadIdx.x < e1 - b1) f(std::integral_constant<int, 1>{}, b1 + threadIdx.x);
}

// One block per (image, chunk): part[block][0..K) = sum over the chunk of op(x, y, w).
template <typename scalar_t, int MASK, typename Op>
__global__ void __launch_bounds__(kThreads)
    flat_partials_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y,
                         const scalar_t* __restrict__ m, FlatShape s, Op op,
                         opmath_t<scalar_t>* __restrict__ part) {
  using T = opmath_t<scalar_t>;
  const uint32_t img = blockIdx.x / s.chunks, chunk = blockIdx.x - img * s.chunks;
  seek_image<MASK != kFlatNone>(s, img, x, y, m);
  const uint32_t e0 = chunk * s.chunk, e1 = min(s.image, e0 + s.chunk);
  T acc[Op::K] = {};
  for_each_in_chunk<kVec<scalar_t>>(x, e0, e1, [&](auto wc, uint32_t e) {
    constexpr int W = decltype(wc)::value;
    T xv[W], yv[W], w[W];
    load_flat<MASK>(x, y, m, e, s, xv, yv, w);
#pragma unroll
    for (int k = 0; k < W; ++k) op(acc, xv[k], yv[k], w[k]);
  });
  block_sum<kThreads>(acc);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int j = 0; j < Op::K; ++j) part[int64_t(blockIdx.x) * Op::K + j] = acc[j];
  }
}

// One block per (image, chunk): gx, gy (either may be null) = coef(x, y, w)
// elementwise, with per-image constants Op::Coef prepared once by warp 0.
template <typename scalar_t, int MASK, typename Op>
__global__ void __launch_bounds__(kThreads)
    flat_pointwise_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ y,
                          const scalar_t* __restrict__ m, FlatShape s, Op op,
                          scalar_t* __restrict__ gx, scalar_t* __restrict__ gy) {
  using T = opmath_t<scalar_t>;
  __shared__ typename Op::Coef shared_coef;
  const uint32_t img = blockIdx.x / s.chunks, chunk = blockIdx.x - img * s.chunks;
  if (threadIdx.x < 32) op.prepare(img, threadIdx.x, shared_coef);
  __syncthreads();
  const typename Op::Coef coef = shared_coef;
  seek_image<MASK != kFlatNone>(s, img, x, y, m, gx, gy);
  const uint32_t e0 = chunk * s.chunk, e1 = min(s.image, e0 + s.chunk);
  for_each_in_chunk<kVec<scalar_t>>(x, e0, e1, [&](auto wc, uint32_t e) {
    constexpr int W = decltype(wc)::value;
    T xv[W], yv[W], w[W], ox[W], oy[W];
    load_flat<MASK>(x, y, m, e, s, xv, yv, w);
#pragma unroll
    for (int k = 0; k < W; ++k) coef(xv[k], yv[k], w[k], ox[k], oy[k]);
    if (gx) store<W>(gx + e, ox);
    if (gy) store<W>(gy + e, oy);
  });
}

// ---------------------------------------------------------------------------
// Finishing: one block sums each image's `chunks` partials (K values each) in
// double with a group of lanes per image, calls fin.image(i, sums, totals) and
// then fin.total(totals) with the block-wide totals.

// Lanes per image: enough for the chunks, at most a warp.
inline int finish_group(int64_t chunks) {
  int g = 1;
  while (g < 32 && g < chunks) g *= 2;
  return g;
}

template <int K, typename acc_t, typename Fin>
__global__ void __launch_bounds__(kFinishThreads)
    finish_kernel(const acc_t* __restrict__ part, int64_t n, uint32_t chunks, int group, Fin fin) {
  const int gid = threadIdx.x / group, glane = threadIdx.x % group;
  const int groups = kFinishThreads / group;
  double tot[Fin::kTotals] = {};
  for (int64_t i0 = 0; i0 < n; i0 += groups) {  // uniform trip count: shuffles stay converged
    const int64_t i = i0 + gid;
    double s[K] = {};
    if (i < n) {
      const acc_t* p = part + i * chunks * K;
      for (uint32_t k = glane; k < chunks; k += group) {
#pragma unroll
        for (int j = 0; j < K; ++j) s[j] += double(p[int64_t(k) * K + j]);
      }
    }
    for (int off = group / 2; off > 0; off /= 2) {
#pragma unroll
      for (int j = 0; j < K; ++j) s[j] += __shfl_xor_sync(0xffffffffu, s[j], off);
    }
    if (i < n && glane == 0) fin.image(i, s, tot);
  }
  block_sum<kFinishThreads>(tot);
  if (threadIdx.x == 0) fin.total(tot);
}

template <int K, typename acc_t, typename Fin>
void launch_finish(const at::Tensor& part, int64_t n, int64_t chunks, const Fin& fin,
                   cudaStream_t stream) {
  finish_kernel<K><<<1, kFinishThreads, 0, stream>>>(part.const_data_ptr<acc_t>(), n,
                                                     uint32_t(chunks), finish_group(chunks), fin);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace fastgan::cuda
