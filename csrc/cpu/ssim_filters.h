// The 1-D filters and per-pixel row loops shared by the CPU SSIM cores for images
// (cpu/ssim_kernel.h) and volumes (cpu/ssim_volume_kernel.h).
//
// Included inside the namespaces of the cores (once with the build's flags, once for
// AVX-512), before them: hence no include guard and no includes here.

// ---------------------------------------------------------------------------
// The 1-D filters. WIN > 0: compile-time window (fully unrolled); WIN == 0: runtime.

// The window is symmetric (g[t] = g[win - 1 - t]): the compile-time filters add the
// mirrored taps first, r + 1 multiplies instead of win (the adds run on other FP pipes).

// out[c] = sum_t g[t] in[c + t], c < n.
template <int WIN, typename T>
void hfilter(const T* __restrict in, const T* __restrict g, int win, int64_t n,
             T* __restrict out) {
  if constexpr (WIN > 0) {
    constexpr int R = WIN / 2;
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) {
      T s = g[R] * in[c + R];
      for (int t = 0; t < R; ++t) s += g[t] * (in[c + t] + in[c + WIN - 1 - t]);
      out[c] = s;
    }
  } else {
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) {
      T s = 0;
      for (int t = 0; t < win; ++t) s += g[t] * in[c + t];
      out[c] = s;
    }
  }
}

// out[c] = sum_t g[t] rows[t][c], c < n.
template <int WIN, typename T>
void vfilter(const T* const* rows, const T* __restrict g, int win, int64_t n, T* __restrict out) {
  if constexpr (WIN > 0) {
    constexpr int R = WIN / 2;
    const T* r[WIN];
    for (int t = 0; t < WIN; ++t) r[t] = rows[t];
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) {
      T s = g[R] * r[R][c];
      for (int t = 0; t < R; ++t) s += g[t] * (r[t][c] + r[WIN - 1 - t][c]);
      out[c] = s;
    }
  } else {
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) out[c] = g[0] * rows[0][c];
    for (int t = 1; t < win; ++t) {
      const T* __restrict r = rows[t];
      const T gt = g[t];
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) out[c] += gt * r[c];
    }
  }
}

// Two consecutive output rows from win + 1 input rows: out0 from rows[0 .. win - 1],
// out1 from rows[1 .. win]; each row is read once for both (half the cache traffic of
// two vfilter calls, which is what bounds the vertical passes).
template <int WIN, typename T>
void vfilter2(const T* const* rows, const T* __restrict g, int win, int64_t n,
              T* __restrict out0, T* __restrict out1) {
  if constexpr (WIN > 0) {
    constexpr int R = WIN / 2;
    const T* r[WIN + 1];
    for (int t = 0; t <= WIN; ++t) r[t] = rows[t];
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) {
      T s0 = g[R] * r[R][c];
      T s1 = g[R] * r[R + 1][c];
      for (int t = 0; t < R; ++t) {
        s0 += g[t] * (r[t][c] + r[WIN - 1 - t][c]);
        s1 += g[t] * (r[t + 1][c] + r[WIN - t][c]);
      }
      out0[c] = s0;
      out1[c] = s1;
    }
  } else {
    vfilter<0>(rows, g, win, n, out0);
    vfilter<0>(rows + 1, g, win, n, out1);
  }
}

template <typename T>
void products(const T* __restrict x, const T* __restrict y, int64_t n, bool mix,
              T* __restrict p2, T* __restrict pxy, T* __restrict pl1) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    p2[c] = x[c] * x[c] + y[c] * y[c];
    pxy[c] = x[c] * y[c];
  }
  if (mix) {
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) pl1[c] = std::fabs(x[c] - y[c]);
  }
}

// The SSIM value of one output row, its weighted sums and (GRAD) the coefficient rows.
// w: the mask (or upstream map) weights of the row; the coefficients use w * scale.
template <int STAT, bool GRAD, typename T>
void pointwise_row(const T* const* m, const T* __restrict w, T scale, int64_t n,
                   const SsimConsts<T>& k, T* __restrict val, T* const* coef, double& sum_wv,
                   double& sum_w) {
  const T* __restrict mx = m[0];
  const T* __restrict my = m[1];
  const T* __restrict ev = m[2];
  const T* __restrict exy = m[3];
  const T* __restrict l1 = m[4];
  T* __restrict cmx = coef[0];
  T* __restrict cmy = coef[1];
  T* __restrict cv = coef[2];
  T* __restrict cxy = coef[3];
  T* __restrict cl1 = coef[4];
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t c = 0; c < n; ++c) {
    const T lv = STAT == kStatMix ? l1[c] : T(0);
    const SsimPoint<T> p = ssim_point<STAT>(mx[c], my[c], ev[c], exy[c], lv, w[c] * scale, k);
    val[c] = p.value;
    a += w[c] * p.value;
    b += w[c];
    if constexpr (GRAD) {
      cmx[c] = p.mx;
      cmy[c] = p.my;
      cv[c] = p.v;
      cxy[c] = p.xy;
      if constexpr (STAT == kStatMix) cl1[c] = p.l1;
    }
  }
  sum_wv += double(a);
  sum_w += double(b);
}

// g = A_mx + 2 x A_v + y A_xy (+ sign(x - y) A_l1) for a = x, b = y; for y swap the
// roles: A_my, a = y, b = x (d|x - y|/dy = sign(y - x)).
template <bool MIX, typename T>
void combine_grad(const T* __restrict am, const T* __restrict av, const T* __restrict axy,
                  const T* __restrict al1, const T* __restrict a, const T* __restrict b,
                  int64_t n, T* __restrict out) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    T v = am[c] + T(2) * a[c] * av[c] + b[c] * axy[c];
    if constexpr (MIX) v += sign_of(a[c] - b[c]) * al1[c];
    out[c] = v;
  }
}

template <typename T>
void add_row(const T* __restrict in, int64_t n, T* __restrict out) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) out[c] += in[c];
}

