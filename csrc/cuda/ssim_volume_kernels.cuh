// Device code of the SSIM CUDA kernels on volumes (cuda/ssim_volume.cu launches them),
// built from the 2-D pieces of cuda/ssim_kernels.cuh: a block handles a TILE x TILE tile of
// one depth slice and loops over the window's depth taps, running the 2-D separable
// passes on each slice through shared memory and adding them with the depth weights in
// registers (kSlots pixels per thread).
//   forward (sums, map and, for the backward, the coefficient maps a_k = w dv/dmoment_k of
//            every map voxel, stored: recomputing the moments of a 3-D halo would cost
//            win times the forward);
//   gradient: for a tile of padded-input voxels, the transposed Gaussian of the stored
//            coefficients (in-plane through shared memory, depth in registers), then
//            d/dx = A_mx + 2 x A_v + y A_xy (+ sign(x - y) A_l1), d/dy likewise.
#pragma once

#include <cstdint>

#include "common/ssim_common.h"
#include "cuda/ssim_kernels.cuh"

namespace fastgan::cuda::ssim_kernels {

template <typename T>
constexpr int kSlots = (kTile<T> * kTile<T> + kThreads - 1) / kThreads;

// The depth axis of a volume: sizes, padding and the depth strides of the inputs.
struct Depth {
  int64_t d, dp, dout;  // image, padded, map
  int pad;
  int64_t sxd, syd, smd, sgd;  // element strides of x, y, mask, grad map
};

template <typename scalar_t>
__device__ __forceinline__ View<scalar_t> at_slice(View<scalar_t> v, int64_t z, int64_t sd) {
  v.p += z * sd;
  return v;
}

template <typename scalar_t, int STAT, bool COEF>
__global__ void __launch_bounds__(kThreads)
    ssim_volume_forward_kernel(View<scalar_t> x, View<scalar_t> y, View<scalar_t> mask,
                               View<scalar_t> grad_map, const opmath_t<scalar_t>* __restrict__ factor,
                               Geometry g, Depth dep, Window<opmath_t<scalar_t>> wnd,
                               SsimConsts<opmath_t<scalar_t>> k, opmath_t<scalar_t>* __restrict__ part,
                               scalar_t* __restrict__ map, opmath_t<scalar_t>* __restrict__ coef) {
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
  const int tile = int(blockIdx.x % g.tiles);
  const int64_t od = blockIdx.x / g.tiles;
  const int64_t o0 = int64_t(tile / g.tiles_w) * TILE, oc0 = int64_t(tile % g.tiles_w) * TILE;
  T acc[kSlots<T>][NM] = {};
  for (int dz = 0; dz < wnd.win; ++dz) {
    int64_t zi;
    if (!image_index(od + dz, dep.d, dep.pad, g.padding, zi)) continue;  // zero padding
    row_filtered_tile<STAT>(at_slice(x, zi, dep.sxd), at_slice(y, zi, dep.syd), g, n, c, o0, oc0,
                            rh, rw, TILE, wnd, sx, sy, sh);
    for (int s = 0; s < kSlots<T>; ++s) {
      const int idx = threadIdx.x + s * kThreads;
      if (idx >= TILE * TILE) break;
      add_vertical<NM>(sh, rh * TILE, TILE, idx / TILE, idx % TILE, wnd.g[dz], wnd, acc[s]);
    }
    __syncthreads();  // before the next slice overwrites the shared tiles
  }

  const T f = factor != nullptr ? factor[plane] : T(1);
  const int64_t slice = plane * dep.dout + od, plane_size = g.ho * g.wo;
  T swv = 0, sw = 0;
  for (int s = 0; s < kSlots<T>; ++s) {
    const int idx = threadIdx.x + s * kThreads;
    if (idx >= TILE * TILE) break;
    const int rr = idx / TILE, cc = idx - rr * TILE;
    const int64_t o = o0 + rr, oc = oc0 + cc;
    if (o >= g.ho || oc >= g.wo) continue;
    T w = T(1);
    if (grad_map.p != nullptr) {
      w = static_cast<T>(at_slice(grad_map, od, dep.sgd).plane(n, c)[o * grad_map.sh + oc * grad_map.sw]);
    } else if (mask.p != nullptr) {
      const int64_t zc = od + r - dep.pad, row = o + r - g.pad, col = oc + r - g.pad;
      w = static_cast<T>(at_slice(mask, zc, dep.smd).plane(n, c)[row * mask.sh + col * mask.sw]);
    }
    const T l1 = NM == 5 ? acc[s][NM - 1] : T(0);
    const SsimPoint<T> p = ssim_point<STAT>(acc[s][0], acc[s][1], acc[s][2], acc[s][3], l1,
                                            COEF && grad_map.p == nullptr ? w * f : w, k);
    swv += w * p.value;
    sw += w;
    const int64_t off = o * g.wo + oc;
    if (map != nullptr) map[slice * plane_size + off] = static_cast<scalar_t>(p.value);
    if constexpr (COEF) {
      T* cp = coef + slice * NM * plane_size + off;
      const T a[5] = {p.mx, p.my, p.v, p.xy, p.l1};
#pragma unroll
      for (int q = 0; q < NM; ++q) cp[q * plane_size] = a[q];
    }
  }
  block_sum2(swv, sw);
  if (threadIdx.x == 0) {
    const int64_t out = ((plane * dep.dout + od) * g.tiles + tile) * 2;
    part[out] = swv;
    part[out + 1] = sw;
  }
}

template <typename scalar_t, int STAT>
__global__ void __launch_bounds__(kThreads)
    ssim_volume_grad_kernel(const opmath_t<scalar_t>* __restrict__ coef, View<scalar_t> x,
                            View<scalar_t> y, Geometry g, Depth dep,
                            Window<opmath_t<scalar_t>> wnd, GradOut<opmath_t<scalar_t>> out,
                            int64_t gsd) {
  using T = opmath_t<scalar_t>;
  constexpr int TILE = kTile<T>;
  constexpr int NM = kMoments<STAT>;
  T* smem = dynamic_smem<T>();
  const int r = wnd.r;
  const int ch = TILE + 2 * r, cw = TILE + 2 * r;  // map voxels that see the tile, in-plane
  T* sc = smem;               // [NM][ch][cw] coefficients
  T* sa = sc + NM * ch * cw;  // [NM][ch][TILE] after the horizontal transposed pass

  const int64_t plane = blockIdx.y;
  const int64_t n = plane / g.c, c = plane - n * g.c;
  const int tile = int(blockIdx.x % g.tiles);
  const int64_t qd = blockIdx.x / g.tiles;
  const int64_t q0 = int64_t(tile / g.tiles_w) * TILE, qc0 = int64_t(tile % g.tiles_w) * TILE;
  const int64_t p0 = q0 - 2 * r, pc0 = qc0 - 2 * r;
  const int64_t plane_size = g.ho * g.wo, cplane = int64_t(ch) * cw, aplane = int64_t(ch) * TILE;
  T acc[kSlots<T>][NM] = {};
  for (int dz = 0; dz < wnd.win; ++dz) {
    const int64_t od = qd - dz;
    if (od < 0 || od >= dep.dout) continue;  // block-uniform
    const T* cp = coef + (plane * dep.dout + od) * NM * plane_size;
    for (int idx = threadIdx.x; idx < ch * cw; idx += kThreads) {
      const int rr = idx / cw, cc = idx - rr * cw;
      const int64_t o = p0 + rr, oc = pc0 + cc;
      const bool on_map = o >= 0 && oc >= 0 && o < g.ho && oc < g.wo;
#pragma unroll
      for (int q = 0; q < NM; ++q) sc[q * cplane + idx] = on_map ? cp[q * plane_size + o * g.wo + oc] : T(0);
    }
    __syncthreads();
    transposed_rows<NM, TILE>(sc, ch, cw, wnd, sa);
    for (int s = 0; s < kSlots<T>; ++s) {
      const int idx = threadIdx.x + s * kThreads;
      if (idx >= TILE * TILE) break;
      add_vertical<NM>(sa, int(aplane), TILE, idx / TILE, idx % TILE, wnd.g[dz], wnd, acc[s]);
    }
    __syncthreads();
  }

  int64_t zi;
  const bool inside = image_index(qd, dep.d, dep.pad, g.padding, zi);
  if (!inside && g.padding != kPadReflect) return;  // a zero-padding slice: no image voxels
  const View<scalar_t> xs = at_slice(x, zi, dep.sxd), ys = at_slice(y, zi, dep.syd);
  for (int s = 0; s < kSlots<T>; ++s) {
    const int idx = threadIdx.x + s * kThreads;
    if (idx >= TILE * TILE) break;
    const int rr = idx / TILE, cc = idx - rr * TILE;
    const int64_t qr = q0 + rr, qc = qc0 + cc;
    if (qr >= g.hp || qc >= g.wp) continue;
    const T xv = load_padded<scalar_t, T>(xs.plane(n, c), xs, g, qr, qc);
    const T yv = load_padded<scalar_t, T>(ys.plane(n, c), ys, g, qr, qc);
    store_grads<scalar_t, NM>(out, g, acc[s], xv, yv, ((plane * dep.dp + qd) * g.hp + qr) * g.wp + qc,
                              n * out.sn + c * out.sc + zi * gsd, qr, qc);
  }
}

}  // namespace fastgan::cuda::ssim_kernels
