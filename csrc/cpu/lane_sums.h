// Reductions with several independent partial sums per loop.
//
// `#pragma omp simd reduction(+ : s)` gives one vector accumulator, so every iteration
// waits for the previous add or FMA (3-4 cycles): 8 floats per 4 cycles, slower than L3
// delivers the data (measured: the masked L1 forward spent most of its time on that one
// FMA chain). Blocks of kLanes elements with an accumulator array keep four 256-bit
// (or two 512-bit) vectors of sums in flight instead. GCC keeps that array on the stack
// (a load and a store per block and vector), so the hot float loops have their own
// intrinsics with the sums in registers (cpu/pointwise_rows_avx2.h, cosine_rows_avx2.h);
// this serves the other types and builds without AVX2.
#pragma once

namespace fastgan::cpu {

// Partial sums per loop: 128 bytes of lanes, four 256-bit vectors.
template <typename T>
constexpr int kLanes = 128 / int(sizeof(T));

template <typename T, int L>
inline T lane_total(const T (&acc)[L]) {
  T s = 0;
  for (int j = 0; j < L; ++j) s += acc[j];
  return s;
}

}  // namespace fastgan::cpu
