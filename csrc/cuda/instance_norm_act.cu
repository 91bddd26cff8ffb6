// CUDA kernels of InstanceNorm + activation; the semantics are those of
// csrc/cpu/instance_norm_act.cpp (see there for the formulas).
//
// Bytes (S = N*C*H*W elements of b bytes): the forward must read x and write y (2 S b),
// the backward must read dy and x and write dx (3 S b).
//  - NCHW: one block per (n, c) plane, one launch each way. The statistics pass reads the
//    plane from memory; the later passes re-read it while it is in L2 (a 128x128 fp32
//    plane is 64 KiB), so memory sees about the bytes above.
//  - NHWC: channels are contiguous, so a block owns 32 channels x 256 pixel rows of one
//    image (a warp reads 32 consecutive channels). Two launches each way: per-tile partial
//    statistics (sums), then a launch in which every tile combines its channels' partials
//    in a fixed order and writes its outputs. x (and dy) are read twice; the second read
//    hits L2 when the tensor fits there.
// Every sum runs in a fixed order (no atomics), so results are deterministic.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/norm_act.h"
#include "cuda/vector_io.cuh"

namespace fastgan::cuda_norm {
namespace {

constexpr int kThreads = 256;     // NCHW: threads per plane
constexpr int kGroup = 32;        // NHWC: channels per block (threadIdx.x)
constexpr int kRows = 8;          // NHWC: pixel rows in flight per block (threadIdx.y)
constexpr int kChunkRows = 256;   // NHWC: pixel rows per block

using cuda::kVec;
using cuda::load;
using cuda::opmath_t;
using cuda::store;

template <typename T>
__device__ __forceinline__ T inv_sqrt(T v) {
  if constexpr (std::is_same_v<T, double>) {
    return 1.0 / sqrt(v);
  } else {
    return 1.0f / sqrtf(v);
  }
}

// Sum of K values over the block, in a fixed order, returned to every thread.
template <int K, typename T>
__device__ __forceinline__ void block_allreduce(T (&v)[K]) {
  constexpr int kWarps = kThreads / 32;
  __shared__ T sh[K][kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int j = 0; j < K; ++j) {
    for (int off = 16; off > 0; off /= 2) v[j] += __shfl_xor_sync(0xffffffffu, v[j], off);
    if (lane == 0) sh[j][warp] = v[j];
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < K; ++j) {
    T s = 0;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += sh[j][w];
    v[j] = s;
  }
  __syncthreads();  // sh may be reused by the caller's next reduction
}

// Per-channel affine parameters (opmath, may be null).
template <typename T>
struct Affine {
  const T* weight;
  const T* bias;
  __device__ __forceinline__ T gamma(int64_t c) const { return weight ? weight[c] : T(1); }
  __device__ __forceinline__ T beta(int64_t c) const { return bias ? bias[c] : T(0); }
};

// ---- NCHW: one block per plane -------------------------------------------------------

template <typename scalar_t, int ACT, int V>
__global__ void __launch_bounds__(kThreads)
    plane_forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y,
                         Affine<opmath_t<scalar_t>> affine, opmath_t<scalar_t>* __restrict__ mean_out,
                         opmath_t<scalar_t>* __restrict__ rstd_out, int64_t C, int64_t HW,
                         double eps, double slope_d) {
  using T = opmath_t<scalar_t>;
  const int64_t plane = blockIdx.x;
  const scalar_t* xp = x + plane * HW;
  scalar_t* yp = y + plane * HW;
  T s[1] = {0};
  for (int64_t i = int64_t(threadIdx.x) * V; i < HW; i += int64_t(kThreads) * V) {
    T v[V];
    load<V>(xp + i, v);
#pragma unroll
    for (int k = 0; k < V; ++k) s[0] += v[k];
  }
  block_allreduce(s);
  const T mean = s[0] / T(HW);
  T q[1] = {0};
  for (int64_t i = int64_t(threadIdx.x) * V; i < HW; i += int64_t(kThreads) * V) {
    T v[V];
    load<V>(xp + i, v);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const T d = v[k] - mean;
      q[0] += d * d;
    }
  }
  block_allreduce(q);
  const T rstd = inv_sqrt(q[0] / T(HW) + T(eps));
  const int64_t c = plane % C;
  const T a = affine.gamma(c) * rstd, beta = affine.beta(c), slope = T(slope_d), one = T(1);
  if (threadIdx.x == 0) {
    mean_out[plane] = mean;
    rstd_out[plane] = rstd;
  }
  for (int64_t i = int64_t(threadIdx.x) * V; i < HW; i += int64_t(kThreads) * V) {
    T v[V];
    load<V>(xp + i, v);
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = norm_activation<ACT>(a * (v[k] - mean) + beta, one, slope);
    store<V>(yp + i, v);
  }
}

// Writes s1[plane] = sum g and s2[plane] = rstd * sum g (x - mean), and dx when NEED_X.
template <typename scalar_t, int ACT, int V, bool NEED_X>
__global__ void __launch_bounds__(kThreads)
    plane_backward_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                          scalar_t* __restrict__ dx, Affine<opmath_t<scalar_t>> affine,
                          const opmath_t<scalar_t>* __restrict__ mean_in,
                          const opmath_t<scalar_t>* __restrict__ rstd_in,
                          opmath_t<scalar_t>* __restrict__ s1_out,
                          opmath_t<scalar_t>* __restrict__ s2_out, int64_t C, int64_t HW,
                          double slope_d) {
  using T = opmath_t<scalar_t>;
  const int64_t plane = blockIdx.x, c = plane % C;
  const scalar_t* xp = x + plane * HW;
  const scalar_t* gp = dy + plane * HW;
  const T mean = mean_in[plane], rstd = rstd_in[plane];
  const T a = affine.gamma(c) * rstd, beta = affine.beta(c), slope = T(slope_d), one = T(1);
  T s[2] = {0, 0};
  for (int64_t i = int64_t(threadIdx.x) * V; i < HW; i += int64_t(kThreads) * V) {
    T xv[V], gv[V];
    load<V>(xp + i, xv);
    load<V>(gp + i, gv);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const T v = xv[k] - mean;
      const T g = norm_activation_grad<ACT>(a * v + beta, gv[k], one, slope);
      s[0] += g;
      s[1] += g * v;
    }
  }
  block_allreduce(s);
  if (threadIdx.x == 0) {
    s1_out[plane] = s[0];
    s2_out[plane] = rstd * s[1];
  }
  if constexpr (NEED_X) {
    const T b = -a * rstd * rstd * s[1] / T(HW), c0 = -a * s[0] / T(HW);
    scalar_t* dp = dx + plane * HW;
    for (int64_t i = int64_t(threadIdx.x) * V; i < HW; i += int64_t(kThreads) * V) {
      T xv[V], gv[V];
      load<V>(xp + i, xv);
      load<V>(gp + i, gv);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const T v = xv[k] - mean;
        const T g = norm_activation_grad<ACT>(a * v + beta, gv[k], one, slope);
        xv[k] = a * g + (b * v + c0);
      }
      store<V>(dp + i, xv);
    }
  }
}

// ---- NHWC: tiles of 32 channels x 256 pixel rows -------------------------------------

struct Tiles {
  int64_t n, c, hw, chunks;
  __device__ __forceinline__ int64_t rows(int64_t k) const {
    return min(hw, (k + 1) * kChunkRows) - k * kChunkRows;
  }
  // Index of the partial of (image, chunk, channel).
  __device__ __forceinline__ int64_t part(int64_t img, int64_t k, int64_t ch) const {
    return (img * chunks + k) * c + ch;
  }
};

// Sum over threadIdx.y of K values per channel lane, in a fixed order; valid in ty == 0.
template <int K, typename T>
__device__ __forceinline__ void column_sum(T (&v)[K]) {
  __shared__ T sh[K][kRows][kGroup];
#pragma unroll
  for (int j = 0; j < K; ++j) sh[j][threadIdx.y][threadIdx.x] = v[j];
  __syncthreads();
  if (threadIdx.y == 0) {
#pragma unroll
    for (int j = 0; j < K; ++j) {
      T s = 0;
#pragma unroll
      for (int r = 0; r < kRows; ++r) s += sh[j][r][threadIdx.x];
      v[j] = s;
    }
  }
  __syncthreads();
}

// Broadcast of ty == 0's values of K per channel lane to the whole block.
template <int K, typename T>
__device__ __forceinline__ void column_broadcast(T (&v)[K]) {
  __shared__ T sh[K][kGroup];
  if (threadIdx.y == 0) {
#pragma unroll
    for (int j = 0; j < K; ++j) sh[j][threadIdx.x] = v[j];
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < K; ++j) v[j] = sh[j][threadIdx.x];
  __syncthreads();
}

// Partial mean and centred sum of squares of each channel over one tile.
template <typename scalar_t>
__global__ void __launch_bounds__(kGroup* kRows)
    nhwc_moments_kernel(const scalar_t* __restrict__ x, Tiles t,
                        opmath_t<scalar_t>* __restrict__ part_mean,
                        opmath_t<scalar_t>* __restrict__ part_m2) {
  using T = opmath_t<scalar_t>;
  const int64_t k = blockIdx.x, img = blockIdx.z;
  const int64_t ch = int64_t(blockIdx.y) * kGroup + threadIdx.x;
  const bool valid = ch < t.c;
  const int64_t p0 = k * kChunkRows, rows = t.rows(k);
  const scalar_t* xi = x + img * t.hw * t.c + ch;
  T s[1] = {0};
  if (valid) {
    for (int64_t p = threadIdx.y; p < rows; p += kRows) s[0] += T(xi[(p0 + p) * t.c]);
  }
  column_sum(s);
  s[0] = s[0] / T(rows);
  column_broadcast(s);
  const T m = s[0];
  T q[1] = {0};
  if (valid) {
    for (int64_t p = threadIdx.y; p < rows; p += kRows) {
      const T d = T(xi[(p0 + p) * t.c]) - m;
      q[0] += d * d;
    }
  }
  column_sum(q);
  if (threadIdx.y == 0 && valid) {
    part_mean[t.part(img, k, ch)] = m;
    part_m2[t.part(img, k, ch)] = q[0];
  }
}

// Combines the partials of this block's channels over all chunks, in a fixed order:
// mean = sum n_k m_k / HW, M2 = sum (M2_k + n_k (m_k - mean)^2). Returns mean, rstd.
template <typename T>
__device__ __forceinline__ void combine_moments(const T* part_mean, const T* part_m2, Tiles t,
                                                int64_t img, int64_t ch, bool valid, double eps,
                                                T& mean_out, T& rstd_out) {
  double s[1] = {0.0};
  if (valid) {
    for (int64_t k = threadIdx.y; k < t.chunks; k += kRows) {
      s[0] += double(t.rows(k)) * double(part_mean[t.part(img, k, ch)]);
    }
  }
  column_sum(s);
  s[0] /= double(t.hw);
  column_broadcast(s);
  const double mean = s[0];
  double q[1] = {0.0};
  if (valid) {
    for (int64_t k = threadIdx.y; k < t.chunks; k += kRows) {
      const double d = double(part_mean[t.part(img, k, ch)]) - mean;
      q[0] += double(part_m2[t.part(img, k, ch)]) + double(t.rows(k)) * d * d;
    }
  }
  column_sum(q);
  column_broadcast(q);
  mean_out = T(mean);
  rstd_out = T(1.0 / sqrt(fmax(q[0] / double(t.hw), 0.0) + eps));
}

template <typename scalar_t, int ACT>
__global__ void __launch_bounds__(kGroup* kRows)
    nhwc_forward_apply_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ y,
                              Affine<opmath_t<scalar_t>> affine,
                              const opmath_t<scalar_t>* __restrict__ part_mean,
                              const opmath_t<scalar_t>* __restrict__ part_m2, Tiles t,
                              opmath_t<scalar_t>* __restrict__ mean_out,
                              opmath_t<scalar_t>* __restrict__ rstd_out, double eps,
                              double slope_d) {
  using T = opmath_t<scalar_t>;
  const int64_t k = blockIdx.x, img = blockIdx.z;
  const int64_t ch = int64_t(blockIdx.y) * kGroup + threadIdx.x;
  const bool valid = ch < t.c;
  T mean, rstd;
  combine_moments(part_mean, part_m2, t, img, ch, valid, eps, mean, rstd);
  if (!valid) return;
  if (k == 0 && threadIdx.y == 0) {
    mean_out[img * t.c + ch] = mean;
    rstd_out[img * t.c + ch] = rstd;
  }
  const T a = affine.gamma(ch) * rstd, beta = affine.beta(ch), slope = T(slope_d), one = T(1);
  const int64_t p0 = k * kChunkRows, rows = t.rows(k), off = img * t.hw * t.c + ch;
  for (int64_t p = threadIdx.y; p < rows; p += kRows) {
    const int64_t e = off + (p0 + p) * t.c;
    y[e] = scalar_t(norm_activation<ACT>(a * (T(x[e]) - mean) + beta, one, slope));
  }
}

// Partial S1 = sum g, S2 = sum g (x - mean) of each channel over one tile.
template <typename scalar_t, int ACT>
__global__ void __launch_bounds__(kGroup* kRows)
    nhwc_grad_sums_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                          Affine<opmath_t<scalar_t>> affine,
                          const opmath_t<scalar_t>* __restrict__ mean_in,
                          const opmath_t<scalar_t>* __restrict__ rstd_in, Tiles t,
                          opmath_t<scalar_t>* __restrict__ part_s1,
                          opmath_t<scalar_t>* __restrict__ part_s2, double slope_d) {
  using T = opmath_t<scalar_t>;
  const int64_t k = blockIdx.x, img = blockIdx.z;
  const int64_t ch = int64_t(blockIdx.y) * kGroup + threadIdx.x;
  const bool valid = ch < t.c;
  T s[2] = {0, 0};
  if (valid) {
    const T mean = mean_in[img * t.c + ch], rstd = rstd_in[img * t.c + ch];
    const T a = affine.gamma(ch) * rstd, beta = affine.beta(ch), slope = T(slope_d), one = T(1);
    const int64_t p0 = k * kChunkRows, rows = t.rows(k), off = img * t.hw * t.c + ch;
    for (int64_t p = threadIdx.y; p < rows; p += kRows) {
      const int64_t e = off + (p0 + p) * t.c;
      const T v = T(x[e]) - mean;
      const T g = norm_activation_grad<ACT>(a * v + beta, T(dy[e]), one, slope);
      s[0] += g;
      s[1] += g * v;
    }
  }
  column_sum(s);
  if (threadIdx.y == 0 && valid) {
    part_s1[t.part(img, k, ch)] = s[0];
    part_s2[t.part(img, k, ch)] = s[1];
  }
}

// Sums the partials over chunks (fixed order), writes s1 = S1 and s2 = rstd S2 once per
// (n, c), and dx over the tile when NEED_X.
template <typename scalar_t, int ACT, bool NEED_X>
__global__ void __launch_bounds__(kGroup* kRows)
    nhwc_grad_apply_kernel(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x,
                           scalar_t* __restrict__ dx, Affine<opmath_t<scalar_t>> affine,
                           const opmath_t<scalar_t>* __restrict__ mean_in,
                           const opmath_t<scalar_t>* __restrict__ rstd_in, Tiles t,
                           const opmath_t<scalar_t>* __restrict__ part_s1,
                           const opmath_t<scalar_t>* __restrict__ part_s2,
                           opmath_t<scalar_t>* __restrict__ s1_out,
                           opmath_t<scalar_t>* __restrict__ s2_out, double slope_d) {
  using T = opmath_t<scalar_t>;
  const int64_t k = blockIdx.x, img = blockIdx.z;
  const int64_t ch = int64_t(blockIdx.y) * kGroup + threadIdx.x;
  const bool valid = ch < t.c;
  double s[2] = {0.0, 0.0};
  if (valid) {
    for (int64_t j = threadIdx.y; j < t.chunks; j += kRows) {
      s[0] += double(part_s1[t.part(img, j, ch)]);
      s[1] += double(part_s2[t.part(img, j, ch)]);
    }
  }
  column_sum(s);
  column_broadcast(s);
  if (!valid) return;
  const T mean = mean_in[img * t.c + ch], rstd = rstd_in[img * t.c + ch];
  if (k == 0 && threadIdx.y == 0) {
    s1_out[img * t.c + ch] = T(s[0]);
    s2_out[img * t.c + ch] = T(double(rstd) * s[1]);
  }
  if constexpr (NEED_X) {
    const T a = affine.gamma(ch) * rstd, beta = affine.beta(ch), slope = T(slope_d), one = T(1);
    const T b = T(-double(a) * double(rstd) * double(rstd) * s[1] / double(t.hw));
    const T c0 = T(-double(a) * s[0] / double(t.hw));
    const int64_t p0 = k * kChunkRows, rows = t.rows(k), off = img * t.hw * t.c + ch;
    for (int64_t p = threadIdx.y; p < rows; p += kRows) {
      const int64_t e = off + (p0 + p) * t.c;
      const T v = T(x[e]) - mean;
      const T g = norm_activation_grad<ACT>(a * v + beta, T(dy[e]), one, slope);
      dx[e] = scalar_t(a * g + (b * v + c0));
    }
  }
}

// ---- host side -----------------------------------------------------------------------

template <typename Fn>
void dispatch_act(int64_t act, Fn&& fn) {
  if (act == kActLeakyReLU) {
    fn(std::integral_constant<int, kActLeakyReLU>{});
  } else {
    fn(std::integral_constant<int, kActIdentity>{});
  }
}

// Vector width usable for every plane: whole 16-byte packs per plane, aligned bases.
template <typename scalar_t>
bool can_vectorize(int64_t hw, std::initializer_list<const void*> ptrs) {
  if (hw % kVec<scalar_t> != 0) return false;
  for (const void* p : ptrs) {
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

template <typename T>
Affine<T> affine_of(const NormInput& in) {
  return {in.weight.defined() ? in.weight.const_data_ptr<T>() : nullptr,
          in.bias.defined() ? in.bias.const_data_ptr<T>() : nullptr};
}

Tiles tiles_of(const NormInput& in) {
  return {in.n, in.c, in.hw, (in.hw + kChunkRows - 1) / kChunkRows};
}

dim3 tile_grid(const Tiles& t, const char* op) {
  const int64_t groups = (t.c + kGroup - 1) / kGroup;
  TORCH_CHECK(t.chunks < std::numeric_limits<int32_t>::max() && groups < 65536 && t.n < 65536,
              op, ": tensor too large for the NHWC kernels");
  return dim3(unsigned(t.chunks), unsigned(groups), unsigned(t.n));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_act_forward(
    const at::Tensor& x_in, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, double eps, double negative_slope,
    int64_t activation) {
  constexpr const char* op = "instance_norm_act_forward";
  const c10::cuda::CUDAGuard guard(x_in.device());
  check_norm_activation(op, activation);
  TORCH_CHECK(eps >= 0.0, op, ": eps must be >= 0, got ", eps);
  const NormInput in = prepare_norm_input(op, x_in, weight, bias);
  auto y = at::empty_like(in.x, in.x.options().memory_format(in.format()));
  auto mean = at::empty({in.n, in.c}, in.x.options().dtype(in.opmath()));
  auto rstd = at::empty_like(mean);
  if (in.x.numel() == 0) return {y, mean, rstd};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.x.scalar_type(), op, [&] {
    using T = opmath_t<scalar_t>;
    const scalar_t* x = in.x.const_data_ptr<scalar_t>();
    scalar_t* yp = y.mutable_data_ptr<scalar_t>();
    const Affine<T> affine = affine_of<T>(in);
    dispatch_act(activation, [&](auto ac) {
      constexpr int ACT = decltype(ac)::value;
      if (!in.nhwc) {
        const int64_t planes = in.n * in.c;
        TORCH_CHECK(planes < std::numeric_limits<int32_t>::max(), op, ": too many planes");
        if (can_vectorize<scalar_t>(in.hw, {x, yp})) {
          plane_forward_kernel<scalar_t, ACT, kVec<scalar_t>><<<unsigned(planes), kThreads, 0, stream>>>(
              x, yp, affine, mean.mutable_data_ptr<T>(), rstd.mutable_data_ptr<T>(), in.c, in.hw,
              eps, negative_slope);
        } else {
          plane_forward_kernel<scalar_t, ACT, 1><<<unsigned(planes), kThreads, 0, stream>>>(
              x, yp, affine, mean.mutable_data_ptr<T>(), rstd.mutable_data_ptr<T>(), in.c, in.hw,
              eps, negative_slope);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        return;
      }
      const Tiles t = tiles_of(in);
      const dim3 grid = tile_grid(t, op), block(kGroup, kRows);
      auto part_mean = at::empty({t.n * t.chunks * t.c}, mean.options());
      auto part_m2 = at::empty_like(part_mean);
      nhwc_moments_kernel<scalar_t><<<grid, block, 0, stream>>>(
          x, t, part_mean.mutable_data_ptr<T>(), part_m2.mutable_data_ptr<T>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      nhwc_forward_apply_kernel<scalar_t, ACT><<<grid, block, 0, stream>>>(
          x, yp, affine, part_mean.const_data_ptr<T>(), part_m2.const_data_ptr<T>(), t,
          mean.mutable_data_ptr<T>(), rstd.mutable_data_ptr<T>(), eps, negative_slope);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_act_backward(
    const at::Tensor& grad_y, const at::Tensor& x_in, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean_in, const at::Tensor& rstd_in,
    double negative_slope, int64_t activation, bool need_x) {
  constexpr const char* op = "instance_norm_act_backward";
  const c10::cuda::CUDAGuard guard(x_in.device());
  check_norm_activation(op, activation);
  const NormInput in = prepare_norm_input(op, x_in, weight, bias);
  TORCH_CHECK(grad_y.sizes() == x_in.sizes(), op, ": grad_y must have x's shape ", x_in.sizes(),
              ", got ", grad_y.sizes());
  TORCH_CHECK(grad_y.scalar_type() == x_in.scalar_type(), op, ": grad_y must have x's dtype");
  TORCH_CHECK(grad_y.device() == x_in.device(), op, ": grad_y must be on x's device");
  const auto opmath = in.opmath();
  for (const at::Tensor* t : {&mean_in, &rstd_in}) {
    TORCH_CHECK(t->numel() == in.n * in.c && t->scalar_type() == opmath &&
                    t->device() == x_in.device(),
                op, ": mean and rstd must be (N, C) ", opmath, " tensors from the forward");
  }
  const at::Tensor dy = grad_y.contiguous(in.format());
  const at::Tensor mean = mean_in.contiguous(), rstd = rstd_in.contiguous();
  at::Tensor dx = need_x ? at::empty_like(in.x, in.x.options().memory_format(in.format()))
                         : at::empty({0}, x_in.options());
  auto s1 = at::empty({in.n, in.c}, mean.options());
  auto s2 = at::empty_like(s1);
  if (in.x.numel() == 0) {
    s1.zero_();
    s2.zero_();
  } else {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.x.scalar_type(), op, [&] {
      using T = opmath_t<scalar_t>;
      const scalar_t* x = in.x.const_data_ptr<scalar_t>();
      const scalar_t* g = dy.const_data_ptr<scalar_t>();
      scalar_t* d = need_x ? dx.mutable_data_ptr<scalar_t>() : nullptr;
      const Affine<T> affine = affine_of<T>(in);
      const T* mp = mean.const_data_ptr<T>();
      const T* rp = rstd.const_data_ptr<T>();
      T* s1p = s1.mutable_data_ptr<T>();
      T* s2p = s2.mutable_data_ptr<T>();
      dispatch_act(activation, [&](auto ac) {
        constexpr int ACT = decltype(ac)::value;
        if (!in.nhwc) {
          const int64_t planes = in.n * in.c;
          TORCH_CHECK(planes < std::numeric_limits<int32_t>::max(), op, ": too many planes");
          auto launch = [&](auto vc, auto nc) {
            plane_backward_kernel<scalar_t, ACT, decltype(vc)::value, decltype(nc)::value>
                <<<unsigned(planes), kThreads, 0, stream>>>(g, x, d, affine, mp, rp, s1p, s2p, in.c, in.hw,
                                                  negative_slope);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          };
          const bool vec = can_vectorize<scalar_t>(in.hw, {x, g, d});
          using V = std::integral_constant<int, kVec<scalar_t>>;
          using One = std::integral_constant<int, 1>;
          if (need_x) {
            vec ? launch(V{}, std::true_type{}) : launch(One{}, std::true_type{});
          } else {
            vec ? launch(V{}, std::false_type{}) : launch(One{}, std::false_type{});
          }
          return;
        }
        const Tiles t = tiles_of(in);
        const dim3 grid = tile_grid(t, op), block(kGroup, kRows);
        auto part_s1 = at::empty({t.n * t.chunks * t.c}, mean.options());
        auto part_s2 = at::empty_like(part_s1);
        nhwc_grad_sums_kernel<scalar_t, ACT><<<grid, block, 0, stream>>>(
            g, x, affine, mp, rp, t, part_s1.mutable_data_ptr<T>(), part_s2.mutable_data_ptr<T>(),
            negative_slope);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        if (need_x) {
          nhwc_grad_apply_kernel<scalar_t, ACT, true><<<grid, block, 0, stream>>>(
              g, x, d, affine, mp, rp, t, part_s1.const_data_ptr<T>(), part_s2.const_data_ptr<T>(),
              s1p, s2p, negative_slope);
        } else {
          // Only the per-(n, c) sums: one tile row of blocks is enough.
          const dim3 sums_grid(1, grid.y, grid.z);
          nhwc_grad_apply_kernel<scalar_t, ACT, false><<<sums_grid, block, 0, stream>>>(
              g, x, d, affine, mp, rp, t, part_s1.const_data_ptr<T>(), part_s2.const_data_ptr<T>(),
              s1p, s2p, negative_slope);
        }
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
  // d gamma_c = sum_n rstd S2, d beta_c = sum_n S1: small (N, C) reductions, on the device.
  auto reduce_n = [&](const at::Tensor& part, const std::optional<at::Tensor>& like) {
    if (!like.has_value() || !like->defined()) return at::empty({0}, x_in.options());
    return part.sum(0).to(like->scalar_type());
  };
  return {dx, reduce_n(s2, weight), reduce_n(s1, bias)};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("instance_norm_act_forward", &instance_norm_act_forward);
  m.impl("instance_norm_act_backward", &instance_norm_act_backward);
}

}  // namespace fastgan::cuda_norm
