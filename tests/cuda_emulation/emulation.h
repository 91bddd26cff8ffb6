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


// The kernels' Geometry of an h x w plane for tiles of `tile`, over the map or (padded)
// over the padded image, as csrc/cuda/ssim_launch.h computes it.
inline fastgan::cuda::ssim_kernels::Geometry emu_geometry(int c, int h, int w, int win, int padding,
                                                          int tile, bool padded) {
  const int r = win / 2;
  fastgan::cuda::ssim_kernels::Geometry g{};
  g.c = c; g.h = h; g.w = w; g.padding = padding; g.pad = padding == 0 ? 0 : r;
  g.hp = h + 2 * g.pad; g.wp = w + 2 * g.pad; g.ho = g.hp - 2 * r; g.wo = g.wp - 2 * r;
  const int64_t rows = padded ? g.hp : g.ho, cols = padded ? g.wp : g.wo;
  g.tiles_w = int((cols + tile - 1) / tile);
  g.tiles = int(g.tiles_w * ((rows + tile - 1) / tile));
  return g;
}

// The Gaussian window (sigma 1.5) and the constants for data_range 1 and alpha.
template <typename T>
fastgan::cuda::ssim_kernels::Window<T> emu_window(int win) {
  fastgan::cuda::ssim_kernels::Window<T> wnd{};
  double gd[fastgan::kMaxWindow];
  fastgan::ssim_window(win, 1.5, gd);
  for (int i = 0; i < win; ++i) wnd.g[i] = T(gd[i]);
  wnd.win = win;
  wnd.r = win / 2;
  return wnd;
}

template <typename T>
fastgan::SsimConsts<T> emu_consts(double alpha) {
  return fastgan::SsimConsts<T>{T(0.01 * 0.01), T(0.03 * 0.03), T(alpha), T(1 - alpha)};
}
