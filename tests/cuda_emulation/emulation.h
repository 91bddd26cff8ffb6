// Stand-ins for the CUDA built-ins, so that the SSIM kernels' device code compiles as host
// C++ with one thread per block (FASTGAN_SSIM_THREADS=1): shared by the emulation
// harnesses of tests/cuda_emulation/, with their file input and output.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __restrict__ __restrict
#define __shared__ static
struct EmuDim { unsigned x = 0, y = 0, z = 0; };
inline EmuDim threadIdx, blockIdx, blockDim{1, 1, 1};
inline void __syncthreads() {}
template <typename T> T __shfl_down_sync(unsigned, T, int) { return T(0); }
#define FASTGAN_SSIM_THREADS 1
#define FASTGAN_SSIM_HOST_EMULATION 1
#include "common/ssim_common.h"
namespace fastgan::cuda::ssim_kernels {
alignas(64) unsigned char g_smem[1 << 22];
template <typename T> T* dynamic_smem() { return reinterpret_cast<T*>(g_smem); }
}
#include "cuda/ssim_kernels.cuh"

template <typename T> std::vector<T> readf(const std::string& f, size_t n) {
  std::vector<T> v(n); FILE* fp = fopen(f.c_str(), "rb"); if (!fp) { perror(f.c_str()); exit(1); }
  if (fread(v.data(), sizeof(T), n, fp) != n) { fprintf(stderr, "short %s\n", f.c_str()); exit(1); }
  fclose(fp); return v;
}
template <typename T> void writef(const std::string& f, const std::vector<T>& v) {
  FILE* fp = fopen(f.c_str(), "wb"); fwrite(v.data(), sizeof(T), v.size(), fp); fclose(fp);
}

