// Device code of the SSIM CUDA kernels (csrc/cuda/ssim.cu launches them): the forward
// (per-tile sums, the map) and the fused backward, over square tiles of one plane.
// Self-contained on purpose (common/ssim_common.h only), so that the index arithmetic
// can also be exercised on a CPU by compiling this header as host code with one thread
// per block (FASTGAN_SSIM_THREADS=1 and stand-ins for the CUDA built-ins).
#pragma once

#include <cstdint>
#include <type_traits>

#include "common/ssim_common.h"

namespace fastgan::cuda::ssim_kernels {

#ifdef FASTGAN_SSIM_THREADS
constexpr int kThreads = FASTGAN_SSIM_THREADS;
#else
constexpr int kThreads = 256;
#endif

constexpr int kFinishThreads = 128;

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// Tile side: 32 (16 for float64, so that the shared memory of window 15 fits).
template <typename T>
constexpr int kTile = std::is_same_v<T, double> ? 16 : 32;

template <typename T>
struct Window {
  T g[kMaxWindow];
  int win, r;
};

// A strided (N, C, H, W) tensor (element strides; sc = 0 broadcasts over channels).
template <typename scalar_t>
struct View {
  const scalar_t* p = nullptr;
  int64_t sn = 0, sc = 0, sh = 0, sw = 0;
  __device__ __forceinline__ const scalar_t* plane(int64_t n, int64_t c) const {
    return p + n * sn + c * sc;
  }
};

struct Geometry {
  int64_t c, h, w;       // image
  int64_t hp, wp;        // padded image
  int64_t ho, wo;        // map
  int pad, padding;
  int tiles_w;           // tiles per row of the grid (map for the forward, padded for the backward)
  int tiles;             // tiles per plane
};

// Image index of padded index p; false when it reads a zero (zero padding, outside).
__device__ __forceinline__ bool image_index(int64_t p, int64_t n, int pad, int padding,
                                            int64_t& i) {
  i = p - pad;
  if (padding == kPadReflect) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i >= 0 && i < n;
}

// The padded image at (pr, pc); 0 outside the padded image.
template <typename scalar_t, typename T>
__device__ __forceinline__ T load_padded(const scalar_t* plane, const View<scalar_t>& v,
                                         const Geometry& g, int64_t pr, int64_t pc) {
  if (pr < 0 || pc < 0 || pr >= g.hp || pc >= g.wp) return T(0);
  int64_t i, j;
  if (!image_index(pr, g.h, g.pad, g.padding, i) || !image_index(pc, g.w, g.pad, g.padding, j)) {
    return T(0);
  }
  return static_cast<T>(plane[i * v.sh + j * v.sw]);
}

// The rh x rw window of the padded x and y planes of (n, c) whose top-left padded pixel
// is (row0, col0), into shared memory (row-major); every thread of the block takes part.
template <typename scalar_t, typename T>
__device__ __forceinline__ void stage_padded_pair(const View<scalar_t>& x, const View<scalar_t>& y,
                                                  const Geometry& g, int64_t n, int64_t c,
                                                  int64_t row0, int64_t col0, int rh, int rw,
                                                  T* sx, T* sy) {
  const scalar_t* xp = x.plane(n, c);
  const scalar_t* yp = y.plane(n, c);
  for (int idx = threadIdx.x; idx < rh * rw; idx += kThreads) {
    const int rr = idx / rw, cc = idx - rr * rw;
    sx[idx] = load_padded<scalar_t, T>(xp, x, g, row0 + rr, col0 + cc);
    sy[idx] = load_padded<scalar_t, T>(yp, y, g, row0 + rr, col0 + cc);
  }
}

// Sum over the block in a fixed order (deterministic); valid in thread 0.
template <typename T>
__device__ __forceinline__ void block_sum2(T& a, T& b) {
  constexpr int kWarps = (kThreads + 31) / 32;
  __shared__ T sh[2][kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int off = 16; off > 0; off /= 2) {
    a += __shfl_down_sync(0xffffffffu, a, off);
    b += __shfl_down_sync(0xffffffffu, b, off);
  }
  if (lane == 0) {
    sh[0][warp] = a;
    sh[1][warp] = b;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    a = 0;
    b = 0;
    for (int k = 0; k < kWarps; ++k) {
      a += sh[0][k];
      b += sh[1][k];
    }
  }
}

template <int STAT>
constexpr int kMoments = STAT == kStatMix ? 5 : 4;

#ifndef FASTGAN_SSIM_HOST_EMULATION
// The block's dynamic shared memory.
template <typename T>
__device__ __forceinline__ T* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  return reinterpret_cast<T*>(smem_raw);
}
#endif

// Horizontal Gaussian of the moment sources over rows [0, rows) and columns [0, cols) of
// the input tile (stride sw_in): out[k][row][col], row stride cols.
template <int STAT, typename T>
__device__ __forceinline__ void horizontal_moments(const T* sx, const T* sy, int sw_in, int rows,
                                                   int cols, const Window<T>& wnd, T* out) {
  constexpr int NM = kMoments<STAT>;
  const int plane = rows * cols;
  for (int idx = threadIdx.x; idx < plane; idx += kThreads) {
    const int rr = idx / cols, cc = idx - rr * cols;
    const T* px = sx + rr * sw_in + cc;
    const T* py = sy + rr * sw_in + cc;
    T m[NM] = {};
    for (int t = 0; t < wnd.win; ++t) {
      const T a = px[t], b = py[t], gt = wnd.g[t];
      m[0] += gt * a;
      m[1] += gt * b;
      m[2] += gt * (a * a + b * b);
      m[3] += gt * (a * b);
      if constexpr (NM == 5) m[4] += gt * fabs(a - b);
    }
#pragma unroll
    for (int k = 0; k < NM; ++k) out[k * plane + idx] = m[k];
  }
}

// The x, y tile of padded rows row0 .. row0 + rh and columns col0 .. col0 + rw into sx, sy,
// then the horizontal Gaussian of its moment sources over `cols` columns into sh.
template <int STAT, typename scalar_t, typename T>
__device__ __forceinline__ void row_filtered_tile(const View<scalar_t>& x, const View<scalar_t>& y,
                                                  const Geometry& g, int64_t n, int64_t c,
                                                  int64_t row0, int64_t col0, int rh, int rw,
                                                  int cols, const Window<T>& wnd, T* sx, T* sy,
                                                  T* sh) {
  stage_padded_pair<scalar_t, T>(x, y, g, n, c, row0, col0, rh, rw, sx, sy);
  __syncthreads();
  horizontal_moments<STAT>(sx, sy, rw, rh, cols, wnd, sh);
  __syncthreads();
}

// acc[q] += scale * sum_t g[t] s[q][rr + t][cc] for the NM planes of s (plane stride ps,
// row stride stride): the vertical Gaussian of one pixel, weighted (by a depth tap).
template <int NM, typename T>
__device__ __forceinline__ void add_vertical(const T* s, int ps, int stride, int rr, int cc,
                                             T scale, const Window<T>& wnd, T* acc) {
  for (int t = 0; t < wnd.win; ++t) {
    const T gt = scale * wnd.g[t];
#pragma unroll
    for (int q = 0; q < NM; ++q) acc[q] += gt * s[q * ps + (rr + t) * stride + cc];
  }
}

// ---------------------------------------------------------------------------
// Forward: per-tile sums (and the map).

template <typename scalar_t, int STAT>
__global__ void __launch_bounds__(kThreads)
    ssim_forward_kernel(View<scalar_t> x, View<scalar_t> y, View<scalar_t> mask, Geometry g,
                        Window<opmath_t<scalar_t>> wnd, SsimConsts<opmath_t<scalar_t>> k,
                        opmath_t<scalar_t>* __restrict__ part, scalar_t* __restrict__ map) {
  using T = opmath_t<scalar_t>;
  constexpr int TILE = kTile<T>;
  constexpr int NM = kMoments<STAT>;
  T* smem = dynamic_smem<T>();
  const int r = wnd.r;
  const int rh = TILE + 2 * r, rw = TILE + 2 * r;
  T* sx = smem;
  T* sy = sx + rh * rw;
  T* sh = sy + rh * rw;  // [NM][rh][TILE]

  const int64_t plane = blockIdx.y;
  const int64_t n = plane / g.c, c = plane - n * g.c;
  const int tile = blockIdx.x;
  const int64_t o0 = int64_t(tile / g.tiles_w) * TILE, oc0 = int64_t(tile % g.tiles_w) * TILE;
  // Map pixel o sees padded rows o .. o + 2r.
  row_filtered_tile<STAT>(x, y, g, n, c, o0, oc0, rh, rw, TILE, wnd, sx, sy, sh);

  T swv = 0, sw = 0;
  const int plane_h = rh * TILE;
  for (int idx = threadIdx.x; idx < TILE * TILE; idx += kThreads) {
    const int rr = idx / TILE, cc = idx - rr * TILE;
    const int64_t o = o0 + rr, oc = oc0 + cc;
    if (o >= g.ho || oc >= g.wo) continue;
    T m[5] = {};
    add_vertical<NM>(sh, plane_h, TILE, rr, cc, T(1), wnd, m);
    T w = T(1);
    if (mask.p != nullptr) {
      const int64_t row = o + r - g.pad, col = oc + r - g.pad;
      w = static_cast<T>(mask.plane(n, c)[row * mask.sh + col * mask.sw]);
    }
    const SsimPoint<T> p = ssim_point<STAT>(m[0], m[1], m[2], m[3], m[4], w, k);
    swv += w * p.value;
    sw += w;
    if (map != nullptr) map[(plane * g.ho + o) * g.wo + oc] = static_cast<scalar_t>(p.value);
  }
  block_sum2(swv, sw);
  if (threadIdx.x == 0) {
    const int64_t out = (plane * g.tiles + tile) * 2;
    part[out] = swv;
    part[out + 1] = sw;
  }
}

// One thread per plane adds its tiles' partial sums in order.
template <typename T>
__global__ void ssim_finish_kernel(const T* __restrict__ part, int64_t planes, int tiles,
                                   T* __restrict__ sums, T* __restrict__ weights) {
  const int64_t plane = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (plane >= planes) return;
  double a = 0.0, b = 0.0;
  for (int t = 0; t < tiles; ++t) {
    a += double(part[(plane * tiles + t) * 2]);
    b += double(part[(plane * tiles + t) * 2 + 1]);
  }
  sums[plane] = T(a);
  weights[plane] = T(b);
}

// ---------------------------------------------------------------------------
// Backward: gradients of sum_p w_p v_p, w_p = mask * factor[plane] or an upstream map.

template <typename T>
struct GradOut {
  void* gx = nullptr;  // scalar_t (image) or T (padded buffer for reflect)
  void* gy = nullptr;
  int64_t sn = 0, sc = 0, sh = 0, sw = 0;  // element strides of the image gradients
};

// The horizontal transposed Gaussian of NM coefficient planes sc ([NM][ch][cw], columns
// starting 2r before the tile) into sa ([NM][ch][TILE]): A_h(row, q) = sum_t g[t] a(row, q - t);
// the window is symmetric, so sum_t g[t] a[col + t].
template <int NM, int TILE, typename T>
__device__ __forceinline__ void transposed_rows(const T* sc, int ch, int cw, const Window<T>& wnd,
                                                T* sa) {
  const int cplane = ch * cw, aplane = ch * TILE;
  for (int idx = threadIdx.x; idx < aplane; idx += kThreads) {
    const int rr = idx / TILE, cc = idx - rr * TILE;
    T acc[NM] = {};
    for (int t = 0; t < wnd.win; ++t) {
      const T gt = wnd.g[t];
#pragma unroll
      for (int q = 0; q < NM; ++q) acc[q] += gt * sc[q * cplane + rr * cw + cc + t];
    }
#pragma unroll
    for (int q = 0; q < NM; ++q) sa[q * aplane + idx] = acc[q];
  }
  __syncthreads();
}

// d/dx = A_mx + 2 x A_v + y A_xy (+ sign(x - y) A_l1) and d/dy of padded pixel (qr, qc)
// from its transposed-filtered coefficients acc, stored: into the padded opmath buffers at
// padded_off for reflect padding (folded afterwards), else into the image gradients at
// base + the pixel's image offset (nothing for a zero-padding pixel).
template <typename scalar_t, int NM, typename T>
__device__ __forceinline__ void store_grads(const GradOut<T>& out, const Geometry& g, const T* acc,
                                            T xv, T yv, int64_t padded_off, int64_t base,
                                            int64_t qr, int64_t qc) {
  const T s = NM == 5 ? sign_of(xv - yv) : T(0);
  const T l1 = NM == 5 ? acc[NM - 1] : T(0);
  const T gxv = acc[0] + T(2) * xv * acc[2] + yv * acc[3] + s * l1;
  const T gyv = acc[1] + T(2) * yv * acc[2] + xv * acc[3] - s * l1;
  if (g.padding == kPadReflect) {
    if (out.gx) static_cast<T*>(out.gx)[padded_off] = gxv;
    if (out.gy) static_cast<T*>(out.gy)[padded_off] = gyv;
    return;
  }
  const int64_t i = qr - g.pad, j = qc - g.pad;
  if (i < 0 || j < 0 || i >= g.h || j >= g.w) return;  // zero padding
  const int64_t off = base + i * out.sh + j * out.sw;
  if (out.gx) static_cast<scalar_t*>(out.gx)[off] = static_cast<scalar_t>(gxv);
  if (out.gy) static_cast<scalar_t*>(out.gy)[off] = static_cast<scalar_t>(gyv);
}

template <typename scalar_t, int STAT>
__global__ void __launch_bounds__(kThreads)
    ssim_backward_kernel(View<scalar_t> x, View<scalar_t> y, View<scalar_t> mask,
                         View<scalar_t> grad_map, const opmath_t<scalar_t>* __restrict__ factor,
                         Geometry g, Window<opmath_t<scalar_t>> wnd,
                         SsimConsts<opmath_t<scalar_t>> k, GradOut<opmath_t<scalar_t>> out) {
  using T = opmath_t<scalar_t>;
  constexpr int TILE = kTile<T>;
  constexpr int NM = kMoments<STAT>;
  T* smem = dynamic_smem<T>();
  const int r = wnd.r;
  const int rh = TILE + 4 * r, rw = TILE + 4 * r;  // input rows / columns
  const int ch = TILE + 2 * r, cw = TILE + 2 * r;  // map pixels that see the tile
  T* sx = smem;
  T* sy = sx + rh * rw;
  T* sh = sy + rh * rw;        // [NM][rh][cw] moments; later [NM][ch][TILE] transposed
  T* sc = sh + NM * rh * cw;   // [NM][ch][cw] coefficients

  const int64_t plane = blockIdx.y;
  const int64_t n = plane / g.c, c = plane - n * g.c;
  const int tile = blockIdx.x;
  const int64_t q0 = int64_t(tile / g.tiles_w) * TILE, qc0 = int64_t(tile % g.tiles_w) * TILE;
  const int64_t p0 = q0 - 2 * r, pc0 = qc0 - 2 * r;  // first map pixel / input of the halo
  row_filtered_tile<STAT>(x, y, g, n, c, p0, pc0, rh, rw, cw, wnd, sx, sy, sh);

  // Coefficients of the map pixels p0 .. p0 + ch - 1 (zero off the map).
  const T f = factor != nullptr ? factor[plane] : T(1);
  const int mplane = rh * cw, cplane = ch * cw;
  for (int idx = threadIdx.x; idx < cplane; idx += kThreads) {
    const int rr = idx / cw, cc = idx - rr * cw;
    const int64_t o = p0 + rr, oc = pc0 + cc;
    T a[5] = {};
    if (o >= 0 && oc >= 0 && o < g.ho && oc < g.wo) {
      T m[5] = {};
      add_vertical<NM>(sh, mplane, cw, rr, cc, T(1), wnd, m);
      T w;
      if (grad_map.p != nullptr) {
        w = static_cast<T>(grad_map.plane(n, c)[o * grad_map.sh + oc * grad_map.sw]);
      } else if (mask.p != nullptr) {
        const int64_t row = o + r - g.pad, col = oc + r - g.pad;
        w = f * static_cast<T>(mask.plane(n, c)[row * mask.sh + col * mask.sw]);
      } else {
        w = f;
      }
      const SsimPoint<T> p = ssim_point<STAT>(m[0], m[1], m[2], m[3], m[4], w, k);
      a[0] = p.mx;
      a[1] = p.my;
      a[2] = p.v;
      a[3] = p.xy;
      a[4] = p.l1;
    }
#pragma unroll
    for (int q = 0; q < NM; ++q) sc[q * cplane + idx] = a[q];
  }
  __syncthreads();

  // Transposed Gaussian, horizontal: A_h(row, q) = sum_t g[t] a(row, q - t); the window is
  // symmetric, so with a's columns starting 2r before the tile: sum_t g[t] a[col + t].
  T* sa = sh;  // [NM][ch][TILE]
  const int aplane = ch * TILE;
  transposed_rows<NM, TILE>(sc, ch, cw, wnd, sa);

  // Vertical, then the gradients of the padded pixels q0 + rr, qc0 + cc.
  for (int idx = threadIdx.x; idx < TILE * TILE; idx += kThreads) {
    const int rr = idx / TILE, cc = idx - rr * TILE;
    const int64_t qr = q0 + rr, qc = qc0 + cc;
    if (qr >= g.hp || qc >= g.wp) continue;
    T acc[NM] = {};
    add_vertical<NM>(sa, aplane, TILE, rr, cc, T(1), wnd, acc);
    const T xv = sx[(rr + 2 * r) * rw + cc + 2 * r];
    const T yv = sy[(rr + 2 * r) * rw + cc + 2 * r];
    store_grads<scalar_t, NM>(out, g, acc, xv, yv, (plane * g.hp + qr) * g.wp + qc,
                              n * out.sn + c * out.sc, qr, qc);
  }
}

}  // namespace fastgan::cuda::ssim_kernels
