// 16-byte vector loads and stores of any float dtype, and the accumulation type,
// shared by the CUDA kernels.
#pragma once

#include <type_traits>

namespace fastgan::cuda {

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// Elements per 16-byte load.
template <typename scalar_t>
constexpr int kVec = 16 / int(sizeof(scalar_t));

template <typename scalar_t, int W>
struct alignas(sizeof(scalar_t) * W) Pack {
  scalar_t v[W];
};

// W consecutive elements; p must be aligned to W elements.
template <int W, typename scalar_t, typename T>
__device__ __forceinline__ void load(const scalar_t* p, T (&out)[W]) {
  const Pack<scalar_t, W> pk = *reinterpret_cast<const Pack<scalar_t, W>*>(p);
#pragma unroll
  for (int k = 0; k < W; ++k) out[k] = static_cast<T>(pk.v[k]);
}

template <int W, typename scalar_t, typename T>
__device__ __forceinline__ void store(scalar_t* p, const T (&in)[W]) {
  Pack<scalar_t, W> pk;
#pragma unroll
  for (int k = 0; k < W; ++k) pk.v[k] = static_cast<scalar_t>(in[k]);
  *reinterpret_cast<Pack<scalar_t, W>*>(p) = pk;
}

}  // namespace fastgan::cuda
