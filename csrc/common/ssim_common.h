// SSIM maths shared by the CPU and CUDA kernels (csrc/cpu/ssim.cpp, csrc/cuda/ssim.cu):
// integer codes, the Gaussian window, and the per-pixel value with its derivatives.
//
// Each output pixel p of the SSIM map sees four Gaussian-filtered moments of the
// (padded) images x and y:
//   mx = G*x,  my = G*y,  ev = G*(x^2 + y^2),  exy = G*(x y)
// (SSIM needs only sigma_x^2 + sigma_y^2 = ev - mx^2 - my^2, so x^2 and y^2 share one
// map), and the SSIM + L1 mix a fifth, l1 = G*|x - y|. With
//   A1 = 2 mx my + C1,  A2 = 2 (exy - mx my) + C2,
//   B1 = mx^2 + my^2 + C1,  B2 = ev - mx^2 - my^2 + C2:
//   ssim = A1 A2 / (B1 B2),  cs = A2 / B2,  mix = alpha (1 - ssim) + beta l1
// where beta = (1 - alpha) / data_range. The gradient of sum_p w_p v_p is
//   d/dx = G^T a_mx + 2 x G^T a_v + y G^T a_xy + sign(x - y) G^T a_l1
//   d/dy = G^T a_my + 2 y G^T a_v + x G^T a_xy - sign(x - y) G^T a_l1
// with a_k = w_p d v_p / d moment_k: four (five) transposed filters, whatever the
// inputs that need a gradient.
#pragma once

#include <cmath>

#include "common/pointwise_loss.h"  // FASTGAN_HD

namespace fastgan {

// padding: 0 = valid (no padding, map (H - 2r, W - 2r)), 1 = zeros ("same"),
// 2 = reflect (torch's "reflect": the edge pixel is not repeated).
enum SsimPadding : int64_t { kPadValid = 0, kPadZero = 1, kPadReflect = 2 };
// stat: the per-pixel value summed: 0 = SSIM, 1 = contrast-structure (cs, for MS-SSIM),
// 2 = alpha (1 - SSIM) + (1 - alpha) G*|x - y| / data_range (the SSIM + L1 mix).
enum SsimStat : int64_t { kStatSsim = 0, kStatCs = 1, kStatMix = 2 };
constexpr int kMinWindow = 3;
constexpr int kMaxWindow = 15;

template <typename T>
struct SsimConsts {
  T c1, c2, alpha, beta;
};

// The value of one pixel and w times its derivatives with respect to the moments
// (v: with respect to ev, i.e. to G*x^2 and to G*y^2).
template <typename T>
struct SsimPoint {
  T value, mx, my, v, xy, l1;
};

template <int STAT, typename T>
FASTGAN_HD SsimPoint<T> ssim_point(T mx, T my, T ev, T exy, T l1, T w, const SsimConsts<T>& k) {
  const T mx2 = mx * mx, my2 = my * my, mxy = mx * my;
  const T a2 = T(2) * (exy - mxy) + k.c2;
  const T b2 = (ev - mx2 - my2) + k.c2;
  SsimPoint<T> p;
  p.l1 = T(0);
  if constexpr (STAT == kStatCs) {
    const T inv = T(1) / b2;
    const T cs = a2 * inv;
    const T s = T(2) * w * inv;
    p.value = cs;
    p.xy = s;
    p.v = -w * cs * inv;
    p.mx = s * (mx * cs - my);
    p.my = s * (my * cs - mx);
  } else {
    const T a1 = T(2) * mxy + k.c1;
    const T b1 = (mx2 + my2) + k.c1;
    const T inv = T(1) / (b1 * b2);
    const T s = a1 * a2 * inv;
    const T t1 = a2 - a1, t2 = s * (b2 - b1);
    // d s / d moment, then scaled by w (and by -alpha for the mix).
    const T scale = STAT == kStatMix ? -k.alpha * w : w;
    const T s2 = T(2) * scale * inv;
    p.xy = s2 * a1;
    p.v = -scale * s * b1 * inv;
    p.mx = s2 * (my * t1 - mx * t2);
    p.my = s2 * (mx * t1 - my * t2);
    if constexpr (STAT == kStatMix) {
      p.value = k.alpha * (T(1) - s) + k.beta * l1;
      p.l1 = w * k.beta;
    } else {
      p.value = s;
    }
  }
  return p;
}

// sign(d) with sign(0) = 0, as the gradient of torch.abs.
template <typename T>
FASTGAN_HD T sign_of(T d) {
  return T(d > T(0)) - T(d < T(0));
}

// The normalised Gaussian window exp(-(i - r)^2 / (2 sigma^2)), i = 0 .. win - 1,
// computed in double (pytorch-msssim and scikit-image's windows agree to ~1e-8).
inline void ssim_window(int win, double sigma, double* g) {
  const int r = win / 2;
  double total = 0.0;
  for (int i = 0; i < win; ++i) {
    const double d = double(i - r);
    g[i] = std::exp(-(d * d) / (2.0 * sigma * sigma));
    total += g[i];
  }
  for (int i = 0; i < win; ++i) g[i] /= total;
}

}  // namespace fastgan
