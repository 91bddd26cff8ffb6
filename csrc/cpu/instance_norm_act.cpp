// CPU kernels of InstanceNorm + activation (leaky ReLU / ReLU / identity).
//
//   forward:  y = act(gamma_c * (x - mean_nc) * rstd_nc + beta_c), with mean and the
//             biased variance over H x W of each (n, c), rstd = 1 / sqrt(var + eps);
//             also returns mean and rstd, (N, C) in opmath (float32; float64 for float64).
//   backward: with g = act'(z) * dy recomputed from x (z is the pre-activation), the
//             per-(n, c) sums S1 = sum g and S2 = sum g * (x - mean) give
//             dx = a * g + B * (x - mean) + C0,  a = gamma * rstd,
//             B = -a * rstd^2 * S2 / HW, C0 = -a * S1 / HW;
//             d gamma_c = sum_n rstd * S2, d beta_c = sum_n S1.
//
// Bytes (S = N*C*H*W elements of b bytes) that must move: the forward reads x and writes
// y (2 S b), the backward reads dy and x and writes dx (3 S b); nothing of size S is
// saved besides x itself (no xhat, no y: the backward recomputes both from x and the
// (N, C) statistics). Each unit of work (an (n, c) plane in NCHW, an image in NHWC) is
// processed whole by one thread: its statistics pass pulls it from memory and the
// output pass re-reads it from the cache (L2 for a 64 KiB plane; L2 or L3 for an image).
// The plain NHWC loops load per-channel coefficients and accumulators with every row (the
// backward's dx pass: 7 loads per vector of data against 2); on AVX-512 CPUs with C % 16 == 0
// the NHWC chunks run cpu/norm_nhwc_tiles.h instead, which keeps a 64-channel block's state
// in registers and streams its outputs past the cache (channels_last at parity with NCHW).
// FLOPs per element: forward 1 (sum) + 4 (centred squares) + 5 (affine, activation);
// backward 7 (sums) + 8 (dx). At 4 bytes per element that is ~1.3 and ~1.3 FLOP/byte:
// memory bound on paper, but close enough to the core's limits that the loops are
// kept branch-free and vectorised (see norm_activation in common/norm_act.h).
//
// Statistics are exact two-pass moments per chunk (NCHW: 4096 elements; NHWC: up to
// 8192 elements of whole pixels, at most 256 pixels; tiles: 256 pixels) in fp32 lanes with the chunk in
// L1, merged across chunks in float64 with Chan's formula, so inputs with a large mean
// keep full precision. Chunks are fixed by the shape; when there are fewer units than
// 2 x threads, the chunks of a unit run in parallel and are merged in the same order,
// so results never depend on the thread count. NHWC vectorises across channels with
// per-channel accumulators in L1. float16 / bfloat16 chunks are converted to float32
// scratch with vectorised loops first (cpu/reduced_float.h). Outputs of 32 MiB or more
// are advised as transparent huge pages before their first touch (cpu/huge_pages.h).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/cpu_features.h"
#ifdef FASTGAN_HAVE_AVX512_BUILD
#include <immintrin.h>  // the streaming stores of cpu/norm_nhwc_tiles.h
#endif

#include "common/norm_act.h"
#include "cpu/huge_pages.h"
#include "cpu/lane_sums.h"
#include "cpu/reduced_float.h"
#include "cpu/streaming_stores.h"

namespace fastgan::cpu {
namespace {

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

constexpr int64_t kChunk = 4096;          // NCHW: elements per statistics chunk
constexpr int64_t kChunkNHWC = 8192;      // NHWC: elements per chunk, about (whole pixels)
constexpr int64_t kMaxChunkPixels = 256;  // NHWC: pixels per chunk, at most
constexpr int64_t kTaskElems = 1 << 15;   // smallest piece of work worth a thread

// A unit is what one thread owns when there are enough of them: an (n, c) plane of
// HW elements (NCHW, chans = 1) or an image of HW pixels x C channels (NHWC). Its
// statistics have indices u * chans + ch == n * C + c in both layouts.
struct Geometry {
  int64_t n = 0, c = 0, hw = 0;
  bool nhwc = false;
  int64_t units = 0, chans = 0, unit_elems = 0;
  int64_t chunk_pixels = 0, chunks = 0;
  bool tiles = false;  // NHWC with C % 16 == 0 on an AVX-512 CPU: cpu/norm_nhwc_tiles.h

  Geometry(int64_t n_, int64_t c_, int64_t hw_, bool nhwc_) : n(n_), c(c_), hw(hw_), nhwc(nhwc_) {
    tiles = nhwc && c % 16 == 0 && use_avx512();
    units = nhwc ? n : n * c;
    chans = nhwc ? c : 1;
    unit_elems = chans * hw;
    // Tiles sweep a chunk once per channel block and finish each block in float64: long
    // chunks amortise that (a chunk of 256 pixels stays in L2 up to C = 512).
    chunk_pixels = tiles ? kMaxChunkPixels
                         : nhwc ? std::clamp<int64_t>(kChunkNHWC / c, 1, kMaxChunkPixels) : kChunk;
    chunks = (hw + chunk_pixels - 1) / chunk_pixels;
  }
  int64_t chunk_begin(int64_t k) const { return k * chunk_pixels; }
  int64_t chunk_len(int64_t k) const { return std::min(hw, (k + 1) * chunk_pixels) - k * chunk_pixels; }
  int64_t offset(int64_t u, int64_t k) const { return u * unit_elems + chunk_begin(k) * chans; }
  int64_t chunk_elems(int64_t k) const { return chunk_len(k) * chans; }
  int64_t max_chunk_elems() const { return std::min(hw, chunk_pixels) * chans; }
  // Whole units per thread when that keeps every thread busy; otherwise chunks.
  bool split(int num_threads) const { return chunks > 1 && units < 2 * int64_t(num_threads); }
  int64_t unit_grain() const { return std::max<int64_t>(1, kTaskElems / std::max<int64_t>(1, unit_elems)); }
  int64_t chunk_grain() const {
    return std::max<int64_t>(1, kTaskElems / std::max<int64_t>(1, chunk_pixels * chans));
  }
};

// 1, hidden from the optimiser: see norm_activation in common/norm_act.h.
template <typename T>
inline T opaque_one() {
  static volatile T one = T(1);
  return one;
}

// Software prefetch of the cache lines in [p, p + bytes).
inline void prefetch_lines(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
}

template <typename T>
inline T affine(T a, T v, T beta) {
  return a * v + beta;
}

// ---- statistics ------------------------------------------------------------------

// Mean and centred sum of squares of len contiguous values: a sum, then the squares
// about that mean with the corrected two-pass term (sum of deviations).
template <typename scalar_t>
void plane_moments(const scalar_t* x, int64_t len, double* mean, double* m2) {
  using T = opmath_t<scalar_t>;
  constexpr int L = kLanes<T>;
  const int64_t body = len / L * L;
  T acc[L] = {};
  for (int64_t i = 0; i < body; i += L) {
#pragma omp simd
    for (int j = 0; j < L; ++j) acc[j] += T(x[i + j]);
  }
  T s = lane_total(acc);
  for (int64_t i = body; i < len; ++i) s += T(x[i]);
  const T m = s / T(len);
  T q[L] = {}, d[L] = {};
  for (int64_t i = 0; i < body; i += L) {
    // This pass reads L1; fetch what follows the chunk meanwhile (the next chunk or unit:
    // units are contiguous). A prefetch past the tensor's end is harmless.
    prefetch_lines(x + len + i, L * sizeof(T));
#pragma omp simd
    for (int j = 0; j < L; ++j) {
      const T v = T(x[i + j]) - m;
      d[j] += v;
      q[j] += v * v;
    }
  }
  T qs = lane_total(q), ds = lane_total(d);
  for (int64_t i = body; i < len; ++i) {
    const T v = T(x[i]) - m;
    ds += v;
    qs += v * v;
  }
  *mean = double(m) + double(ds) / double(len);
  *m2 = double(qs) - double(ds) * double(ds) / double(len);
}

// NHWC: per channel of `pixels` rows of c channels (row stride c), vectorised across
// channels with accumulators in L1 arrays of c values (s, q, d: scratch), two rows per step.
// The same two passes as plane_moments, per channel.
template <typename scalar_t>
void image_moments(const scalar_t* x, int64_t pixels, int64_t c, opmath_t<scalar_t>* s,
                   opmath_t<scalar_t>* q, opmath_t<scalar_t>* d, double* mean, double* m2) {
  using T = opmath_t<scalar_t>;
  std::fill(s, s + c, T(0));
  int64_t p = 0;
  for (; p + 2 <= pixels; p += 2) {
    const scalar_t* r0 = x + p * c;
    const scalar_t* r1 = r0 + c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) s[ch] += T(r0[ch]) + T(r1[ch]);
  }
  if (p < pixels) {
    const scalar_t* r0 = x + p * c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) s[ch] += T(r0[ch]);
  }
#pragma omp simd
  for (int64_t ch = 0; ch < c; ++ch) s[ch] = s[ch] / T(pixels);
  std::fill(q, q + c, T(0));
  std::fill(d, d + c, T(0));
  const size_t row_bytes = size_t(c) * sizeof(scalar_t);
  for (p = 0; p + 2 <= pixels; p += 2) {
    const scalar_t* r0 = x + p * c;
    const scalar_t* r1 = r0 + c;
    // From L1 now: fetch the next chunk meanwhile (it follows this one in memory).
    prefetch_lines(x + (pixels + p) * c, 2 * row_bytes);
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      const T v0 = T(r0[ch]) - s[ch], v1 = T(r1[ch]) - s[ch];
      d[ch] += v0 + v1;
      q[ch] += v0 * v0 + v1 * v1;
    }
  }
  if (p < pixels) {
    const scalar_t* r0 = x + p * c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      const T v0 = T(r0[ch]) - s[ch];
      d[ch] += v0;
      q[ch] += v0 * v0;
    }
  }
  const double np = double(pixels);
#pragma omp simd
  for (int64_t ch = 0; ch < c; ++ch) {
    mean[ch] = double(s[ch]) + double(d[ch]) / np;
    m2[ch] = double(q[ch]) - double(d[ch]) * double(d[ch]) / np;
  }
}

// Chan's merge of a chunk of nb values into running moments over `count` values.
inline void merge_moments(double* mean, double* m2, const double* mb, const double* m2b,
                          int64_t chans, double count, double nb) {
  const double total = count + nb, wb = nb / total, wc = count * nb / total;
#pragma omp simd
  for (int64_t ch = 0; ch < chans; ++ch) {
    const double d = mb[ch] - mean[ch];
    mean[ch] += d * wb;
    m2[ch] += m2b[ch] + d * d * wc;
  }
}

// ---- elementwise passes --------------------------------------------------------------

template <typename scalar_t, int ACT>
void plane_forward_apply(const scalar_t* x, scalar_t* y, int64_t len, opmath_t<scalar_t> mean,
                         opmath_t<scalar_t> a, opmath_t<scalar_t> beta,
                         opmath_t<scalar_t> slope) {
  using T = opmath_t<scalar_t>;
  const T one = opaque_one<T>();
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    y[i] = scalar_t(norm_activation<ACT>(affine(a, T(x[i]) - mean, beta), one, slope));
  }
}

template <typename scalar_t, int ACT>
void image_forward_apply(const scalar_t* x, scalar_t* y, int64_t pixels, int64_t c,
                         const opmath_t<scalar_t>* mean, const opmath_t<scalar_t>* a,
                         const opmath_t<scalar_t>* beta, opmath_t<scalar_t> slope) {
  using T = opmath_t<scalar_t>;
  const T one = opaque_one<T>();
  for (int64_t p = 0; p < pixels; ++p) {
    const scalar_t* xr = x + p * c;
    scalar_t* yr = y + p * c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      yr[ch] = scalar_t(norm_activation<ACT>(affine(a[ch], T(xr[ch]) - mean[ch], beta[ch]), one, slope));
    }
  }
}

// S1 += sum g, S2 += sum g * (x - mean) over len contiguous values (fp32 lanes, then
// added to the float64 running sums).
template <typename scalar_t, int ACT>
void plane_grad_sums(const scalar_t* dy, const scalar_t* x, int64_t len, opmath_t<scalar_t> mean,
                     opmath_t<scalar_t> a, opmath_t<scalar_t> beta, opmath_t<scalar_t> slope,
                     double* s1, double* s2) {
  using T = opmath_t<scalar_t>;
  const T one = opaque_one<T>();
  constexpr int L = kLanes<T>;
  const int64_t body = len / L * L;
  T a1[L] = {}, a2[L] = {};
  for (int64_t i = 0; i < body; i += L) {
#pragma omp simd
    for (int j = 0; j < L; ++j) {
      const T v = T(x[i + j]) - mean;
      const T g = norm_activation_grad<ACT>(affine(a, v, beta), T(dy[i + j]), one, slope);
      a1[j] += g;
      a2[j] += g * v;
    }
  }
  T t1 = lane_total(a1), t2 = lane_total(a2);
  for (int64_t i = body; i < len; ++i) {
    const T v = T(x[i]) - mean;
    const T g = norm_activation_grad<ACT>(affine(a, v, beta), T(dy[i]), one, slope);
    t1 += g;
    t2 += g * v;
  }
  *s1 += double(t1);
  *s2 += double(t2);
}

// Per channel over `pixels` rows; the float sums are added into the float64 totals every
// kGradSegment pixels, so no float chain exceeds that length (as in norm_nhwc_tiles.h).
constexpr int64_t kGradSegment = 64;

template <typename scalar_t, int ACT>
void image_grad_sums(const scalar_t* dy, const scalar_t* x, int64_t pixels, int64_t c,
                     const opmath_t<scalar_t>* mean, const opmath_t<scalar_t>* a,
                     const opmath_t<scalar_t>* beta, opmath_t<scalar_t> slope,
                     opmath_t<scalar_t>* a1, opmath_t<scalar_t>* a2, double* s1, double* s2) {
  using T = opmath_t<scalar_t>;
  const T one = opaque_one<T>();
  for (int64_t p0 = 0; p0 < pixels; p0 += kGradSegment) {
    std::fill(a1, a1 + c, T(0));
    std::fill(a2, a2 + c, T(0));
    for (int64_t p = p0; p < std::min(pixels, p0 + kGradSegment); ++p) {
      const scalar_t* xr = x + p * c;
      const scalar_t* gr = dy + p * c;
#pragma omp simd
      for (int64_t ch = 0; ch < c; ++ch) {
        const T v = T(xr[ch]) - mean[ch];
        const T g = norm_activation_grad<ACT>(affine(a[ch], v, beta[ch]), T(gr[ch]), one, slope);
        a1[ch] += g;
        a2[ch] += g * v;
      }
    }
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      s1[ch] += double(a1[ch]);
      s2[ch] += double(a2[ch]);
    }
  }
}

template <typename scalar_t, int ACT>
void plane_grad_apply(const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t len,
                      opmath_t<scalar_t> mean, opmath_t<scalar_t> a, opmath_t<scalar_t> beta,
                      opmath_t<scalar_t> slope, opmath_t<scalar_t> b, opmath_t<scalar_t> c0) {
  using T = opmath_t<scalar_t>;
  const T one = opaque_one<T>();
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    const T v = T(x[i]) - mean;
    const T g = norm_activation_grad<ACT>(affine(a, v, beta), T(dy[i]), one, slope);
    dx[i] = scalar_t(a * g + (b * v + c0));
  }
}

template <typename scalar_t, int ACT>
void image_grad_apply(const scalar_t* dy, const scalar_t* x, scalar_t* dx, int64_t pixels,
                      int64_t c, const opmath_t<scalar_t>* mean, const opmath_t<scalar_t>* a,
                      const opmath_t<scalar_t>* beta, opmath_t<scalar_t> slope,
                      const opmath_t<scalar_t>* b, const opmath_t<scalar_t>* c0) {
  using T = opmath_t<scalar_t>;
  const T one = opaque_one<T>();
  for (int64_t p = 0; p < pixels; ++p) {
    const scalar_t* xr = x + p * c;
    const scalar_t* gr = dy + p * c;
    scalar_t* dr = dx + p * c;
#pragma omp simd
    for (int64_t ch = 0; ch < c; ++ch) {
      const T v = T(xr[ch]) - mean[ch];
      const T g = norm_activation_grad<ACT>(affine(a[ch], v, beta[ch]), T(gr[ch]), one, slope);
      dr[ch] = scalar_t(a[ch] * g + (b[ch] * v + c0[ch]));
    }
  }
}

// The NHWC loops with per-channel state in registers (float; C % 16 == 0).
#ifdef FASTGAN_HAVE_AVX512_BUILD
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,prefer-vector-width=512")
#endif
#include "cpu/norm_nhwc_tiles.h"
#ifdef FASTGAN_HAVE_AVX512_BUILD
#pragma GCC pop_options
#endif

// ---- per-statistic coefficients ----------------------------------------------------

// Per statistic i = n * C + c, in opmath: mean, a = gamma * rstd (formed from the stored,
// rounded rstd, so forward and backward recompute identical pre-activations), and the
// bias. Shared by both passes.
template <typename T>
struct Coefficients {
  std::vector<T> mean, a, beta;
  explicit Coefficients(int64_t count) : mean(count), a(count), beta(count) {}
  void set(int64_t i, int64_t ch, T mean_i, T rstd_i, const T* weight, const T* bias) {
    mean[i] = mean_i;
    a[i] = weight ? weight[ch] * rstd_i : rstd_i;
    beta[i] = bias ? bias[ch] : T(0);
  }
};

// ---- staging of float16 / bfloat16 chunks -------------------------------------------

// The element type the loops see: float for float16 / bfloat16 (each chunk is converted
// into a float scratch buffer first, see cpu/reduced_float.h), else the input type.
template <typename scalar_t>
using compute_t = std::conditional_t<is_reduced_float_v<scalar_t>, float, scalar_t>;

// n elements at p as compute_t: p itself, or their conversion into buf.
template <typename scalar_t>
const compute_t<scalar_t>* staged_in(const scalar_t* p, int64_t n, std::vector<float>& buf) {
  if constexpr (is_reduced_float_v<scalar_t>) {
    to_float(p, buf.data(), n);
    return buf.data();
  } else {
    return p;
  }
}

// Where to write n outputs destined for p; commit_out then stores them at p.
template <typename scalar_t>
compute_t<scalar_t>* staged_out(scalar_t* p, std::vector<float>& buf) {
  if constexpr (is_reduced_float_v<scalar_t>) {
    return buf.data();
  } else {
    return p;
  }
}

template <typename scalar_t>
void commit_out(scalar_t* p, int64_t n, const std::vector<float>& buf) {
  if constexpr (is_reduced_float_v<scalar_t>) from_float(buf.data(), p, n);
}

template <typename scalar_t>
size_t stage_size(const Geometry& g) {
  return is_reduced_float_v<scalar_t> ? size_t(g.max_chunk_elems()) : 0;
}

// ---- forward -----------------------------------------------------------------------

template <typename scalar_t>
struct ForwardPlan {
  using T = opmath_t<scalar_t>;
  Geometry g;
  const scalar_t* x;
  scalar_t* y;
  const T* weight;  // null: gamma = 1
  const T* bias;    // null: beta = 0
  double eps;
  T slope;
  int64_t act;
  T* mean_out;
  T* rstd_out;
  Coefficients<T>* coef;

  using C = compute_t<scalar_t>;

  struct Scratch {
    std::vector<T> s, q, d;  // NHWC accumulators
    std::vector<double> mb, m2b;
    std::vector<float> fx, fy;  // float16 / bfloat16 chunks as float
    explicit Scratch(const Geometry& g)
        : s(g.chans), q(g.chans), d(g.chans), mb(g.chans), m2b(g.chans),
          fx(stage_size<scalar_t>(g)), fy(stage_size<scalar_t>(g)) {}
  };

  void chunk_moments(int64_t u, int64_t k, Scratch& sc, double* mb, double* m2b) const {
    const C* xp = staged_in(x + g.offset(u, k), g.chunk_elems(k), sc.fx);
    if constexpr (std::is_same_v<C, float>) {
      if (g.tiles) return norm_tiles::moments(xp, g.chunk_len(k), g.c, mb, m2b);
    }
    if (g.nhwc) {
      image_moments(xp, g.chunk_len(k), g.c, sc.s.data(), sc.q.data(), sc.d.data(), mb, m2b);
    } else {
      plane_moments(xp, g.chunk_len(k), mb, m2b);
    }
  }

  // Running moments of unit u -> stored statistics and coefficients.
  void finish_unit(int64_t u, const double* mean, const double* m2) const {
    for (int64_t ch = 0; ch < g.chans; ++ch) {
      const int64_t i = u * g.chans + ch;
      const double var = std::max(m2[ch] / double(g.hw), 0.0);
      const T m = T(mean[ch]), r = T(1.0 / std::sqrt(var + eps));
      mean_out[i] = m;
      rstd_out[i] = r;
      coef->set(i, g.nhwc ? ch : i % g.c, m, r, weight, bias);
    }
  }

  template <int ACT>
  void apply(int64_t u, int64_t k, Scratch& sc) const {
    const int64_t off = g.offset(u, k), i = u * g.chans, n = g.chunk_elems(k);
    const C* xp = staged_in(x + off, n, sc.fx);
    C* yp = staged_out(y + off, sc.fy);
    if constexpr (std::is_same_v<C, float>) {
      if (g.tiles) {
        norm_tiles::forward_apply<ACT>(xp, yp, g.chunk_len(k), g.c, &coef->mean[i], &coef->a[i],
                                       &coef->beta[i], slope);
        return commit_out(y + off, n, sc.fy);
      }
    }
    if (g.nhwc) {
      image_forward_apply<C, ACT>(xp, yp, g.chunk_len(k), g.c, &coef->mean[i], &coef->a[i],
                                  &coef->beta[i], slope);
    } else {
      plane_forward_apply<C, ACT>(xp, yp, g.chunk_len(k), coef->mean[i], coef->a[i],
                                  coef->beta[i], slope);
    }
    commit_out(y + off, n, sc.fy);
  }

  void apply_chunk(int64_t u, int64_t k, Scratch& sc) const {
    if (act == kActLeakyReLU) {
      apply<kActLeakyReLU>(u, k, sc);
    } else {
      apply<kActIdentity>(u, k, sc);
    }
  }

  void run() const {
    if (!g.split(at::get_num_threads())) {
      at::parallel_for(0, g.units, g.unit_grain(), [&](int64_t begin, int64_t end) {
        Scratch sc(g);
        std::vector<double> mean(g.chans), m2(g.chans);
        for (int64_t u = begin; u < end; ++u) {
          std::fill(mean.begin(), mean.end(), 0.0);
          std::fill(m2.begin(), m2.end(), 0.0);
          for (int64_t k = 0; k < g.chunks; ++k) {
            chunk_moments(u, k, sc, sc.mb.data(), sc.m2b.data());
            merge_moments(mean.data(), m2.data(), sc.mb.data(), sc.m2b.data(), g.chans,
                          double(g.chunk_begin(k)), double(g.chunk_len(k)));
          }
          finish_unit(u, mean.data(), m2.data());
          for (int64_t k = 0; k < g.chunks; ++k) apply_chunk(u, k, sc);
        }
        stream_fence();  // the NHWC tiles' streaming stores, once per thread
      });
      return;
    }
    // Few units: chunks in parallel, the same merge order, then the output pass.
    const int64_t tasks = g.units * g.chunks;
    std::vector<double> mb(tasks * g.chans), m2b(tasks * g.chans);
    at::parallel_for(0, tasks, g.chunk_grain(), [&](int64_t begin, int64_t end) {
      Scratch sc(g);
      for (int64_t t = begin; t < end; ++t) {
        chunk_moments(t / g.chunks, t % g.chunks, sc, &mb[t * g.chans], &m2b[t * g.chans]);
      }
    });
    std::vector<double> mean(g.chans), m2(g.chans);
    for (int64_t u = 0; u < g.units; ++u) {
      std::fill(mean.begin(), mean.end(), 0.0);
      std::fill(m2.begin(), m2.end(), 0.0);
      for (int64_t k = 0; k < g.chunks; ++k) {
        const int64_t t = u * g.chunks + k;
        merge_moments(mean.data(), m2.data(), &mb[t * g.chans], &m2b[t * g.chans], g.chans,
                      double(g.chunk_begin(k)), double(g.chunk_len(k)));
      }
      finish_unit(u, mean.data(), m2.data());
    }
    at::parallel_for(0, tasks, g.chunk_grain(), [&](int64_t begin, int64_t end) {
      Scratch sc(g);
      for (int64_t t = begin; t < end; ++t) apply_chunk(t / g.chunks, t % g.chunks, sc);
      stream_fence();
    });
  }
};

// ---- backward ----------------------------------------------------------------------

template <typename scalar_t>
struct BackwardPlan {
  using T = opmath_t<scalar_t>;
  Geometry g;
  const scalar_t* dy;
  const scalar_t* x;
  scalar_t* dx;  // null: only the parameter gradients
  T slope;
  int64_t act;
  const Coefficients<T>* coef;
  const T* rstd;
  std::vector<T>* b;   // dx coefficients per statistic
  std::vector<T>* c0;
  double* s1;  // per statistic: sum g       (d beta contributions)
  double* s2;  // per statistic: rstd * sum g (x - mean)  (d gamma contributions)

  using C = compute_t<scalar_t>;

  struct Scratch {
    std::vector<T> a1, a2;  // NHWC accumulators
    std::vector<double> t1, t2;
    std::vector<float> fx, fg, fd;  // float16 / bfloat16 chunks as float
    explicit Scratch(const Geometry& g)
        : a1(g.chans), a2(g.chans), t1(g.chans), t2(g.chans), fx(stage_size<scalar_t>(g)),
          fg(stage_size<scalar_t>(g)), fd(stage_size<scalar_t>(g)) {}
  };

  template <int ACT>
  void sums(int64_t u, int64_t k, Scratch& sc, double* t1, double* t2) const {
    const int64_t off = g.offset(u, k), i = u * g.chans, n = g.chunk_elems(k);
    const C* xp = staged_in(x + off, n, sc.fx);
    const C* gp = staged_in(dy + off, n, sc.fg);
    if constexpr (std::is_same_v<C, float>) {
      if (g.tiles) {
        return norm_tiles::grad_sums<ACT>(gp, xp, g.chunk_len(k), g.c, &coef->mean[i],
                                          &coef->a[i], &coef->beta[i], slope, t1, t2);
      }
    }
    if (g.nhwc) {
      image_grad_sums<C, ACT>(gp, xp, g.chunk_len(k), g.c, &coef->mean[i], &coef->a[i],
                              &coef->beta[i], slope, sc.a1.data(), sc.a2.data(), t1, t2);
    } else {
      plane_grad_sums<C, ACT>(gp, xp, g.chunk_len(k), coef->mean[i], coef->a[i], coef->beta[i],
                              slope, t1, t2);
    }
  }

  // Adds chunk k's sums to t1, t2 (chans values each).
  void chunk_sums(int64_t u, int64_t k, Scratch& sc, double* t1, double* t2) const {
    if (act == kActLeakyReLU) {
      sums<kActLeakyReLU>(u, k, sc, t1, t2);
    } else {
      sums<kActIdentity>(u, k, sc, t1, t2);
    }
  }

  void finish_unit(int64_t u, const double* t1, const double* t2) const {
    const double inv_hw = 1.0 / double(g.hw);
    for (int64_t ch = 0; ch < g.chans; ++ch) {
      const int64_t i = u * g.chans + ch;
      const double r = double(rstd[i]), a = double(coef->a[i]);
      s1[i] = t1[ch];
      s2[i] = r * t2[ch];
      (*b)[i] = T(-a * r * r * t2[ch] * inv_hw);
      (*c0)[i] = T(-a * t1[ch] * inv_hw);
    }
  }

  template <int ACT>
  void apply(int64_t u, int64_t k, Scratch& sc) const {
    const int64_t off = g.offset(u, k), i = u * g.chans, n = g.chunk_elems(k);
    const C* xp = staged_in(x + off, n, sc.fx);
    const C* gp = staged_in(dy + off, n, sc.fg);
    C* dp = staged_out(dx + off, sc.fd);
    if constexpr (std::is_same_v<C, float>) {
      if (g.tiles) {
        norm_tiles::grad_apply<ACT>(gp, xp, dp, g.chunk_len(k), g.c, &coef->mean[i], &coef->a[i],
                                    &coef->beta[i], slope, &(*b)[i], &(*c0)[i]);
        return commit_out(dx + off, n, sc.fd);
      }
    }
    if (g.nhwc) {
      image_grad_apply<C, ACT>(gp, xp, dp, g.chunk_len(k), g.c, &coef->mean[i], &coef->a[i],
                               &coef->beta[i], slope, &(*b)[i], &(*c0)[i]);
    } else {
      plane_grad_apply<C, ACT>(gp, xp, dp, g.chunk_len(k), coef->mean[i], coef->a[i],
                               coef->beta[i], slope, (*b)[i], (*c0)[i]);
    }
    commit_out(dx + off, n, sc.fd);
  }

  void apply_chunk(int64_t u, int64_t k, Scratch& sc) const {
    if (dx == nullptr) return;
    if (act == kActLeakyReLU) {
      apply<kActLeakyReLU>(u, k, sc);
    } else {
      apply<kActIdentity>(u, k, sc);
    }
  }

  void run() const {
    if (!g.split(at::get_num_threads())) {
      at::parallel_for(0, g.units, g.unit_grain(), [&](int64_t begin, int64_t end) {
        Scratch sc(g);
        for (int64_t u = begin; u < end; ++u) {
          std::fill(sc.t1.begin(), sc.t1.end(), 0.0);
          std::fill(sc.t2.begin(), sc.t2.end(), 0.0);
          for (int64_t k = 0; k < g.chunks; ++k) chunk_sums(u, k, sc, sc.t1.data(), sc.t2.data());
          finish_unit(u, sc.t1.data(), sc.t2.data());
          for (int64_t k = 0; k < g.chunks; ++k) apply_chunk(u, k, sc);
        }
        stream_fence();
      });
      return;
    }
    const int64_t tasks = g.units * g.chunks;
    std::vector<double> p1(tasks * g.chans, 0.0), p2(tasks * g.chans, 0.0);
    at::parallel_for(0, tasks, g.chunk_grain(), [&](int64_t begin, int64_t end) {
      Scratch sc(g);
      for (int64_t t = begin; t < end; ++t) {
        chunk_sums(t / g.chunks, t % g.chunks, sc, &p1[t * g.chans], &p2[t * g.chans]);
      }
    });
    std::vector<double> t1(g.chans), t2(g.chans);
    for (int64_t u = 0; u < g.units; ++u) {
      std::fill(t1.begin(), t1.end(), 0.0);
      std::fill(t2.begin(), t2.end(), 0.0);
      for (int64_t k = 0; k < g.chunks; ++k) {  // the order of the fused loop
        const int64_t t = u * g.chunks + k;
        for (int64_t ch = 0; ch < g.chans; ++ch) {
          t1[ch] += p1[t * g.chans + ch];
          t2[ch] += p2[t * g.chans + ch];
        }
      }
      finish_unit(u, t1.data(), t2.data());
    }
    if (dx == nullptr) return;
    at::parallel_for(0, tasks, g.chunk_grain(), [&](int64_t begin, int64_t end) {
      Scratch sc(g);
      for (int64_t t = begin; t < end; ++t) apply_chunk(t / g.chunks, t % g.chunks, sc);
      stream_fence();
    });
  }
};

// ---- ops ---------------------------------------------------------------------------

template <typename T>
const T* maybe_ptr(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

template <typename scalar_t>
void forward_impl(const NormInput& in, at::Tensor& y, at::Tensor& mean, at::Tensor& rstd,
                  double eps, double slope, int64_t act) {
  using T = opmath_t<scalar_t>;
  const Geometry g(in.n, in.c, in.hw, in.nhwc);
  Coefficients<T> coef(in.n * in.c);
  ForwardPlan<scalar_t> plan{g,
                             in.x.const_data_ptr<scalar_t>(),
                             y.mutable_data_ptr<scalar_t>(),
                             maybe_ptr<T>(in.weight),
                             maybe_ptr<T>(in.bias),
                             eps,
                             T(slope),
                             act,
                             mean.mutable_data_ptr<T>(),
                             rstd.mutable_data_ptr<T>(),
                             &coef};
  plan.run();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_act_forward(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, double eps, double negative_slope,
    int64_t activation) {
  constexpr const char* op = "instance_norm_act_forward";
  check_norm_activation(op, activation);
  TORCH_CHECK(eps >= 0.0, op, ": eps must be >= 0, got ", eps);
  const NormInput in = prepare_norm_input(op, x, weight, bias);
  auto y = empty_output(in.x, in.format());
  auto mean = at::empty({in.n, in.c}, in.x.options().dtype(in.opmath()));
  auto rstd = at::empty_like(mean);
  if (in.x.numel() == 0) return {y, mean, rstd};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.x.scalar_type(), op, [&] {
    forward_impl<scalar_t>(in, y, mean, rstd, eps, negative_slope, activation);
  });
  return {y, mean, rstd};
}

template <typename scalar_t>
void backward_impl(const NormInput& in, const at::Tensor& dy, const at::Tensor& mean,
                   const at::Tensor& rstd, at::Tensor* dx, double* s1, double* s2,
                   double slope, int64_t act) {
  using T = opmath_t<scalar_t>;
  const Geometry g(in.n, in.c, in.hw, in.nhwc);
  const int64_t count = in.n * in.c;
  const T* weight = maybe_ptr<T>(in.weight);
  const T* bias = maybe_ptr<T>(in.bias);
  const T* mp = mean.const_data_ptr<T>();
  const T* rp = rstd.const_data_ptr<T>();
  Coefficients<T> coef(count);
  for (int64_t i = 0; i < count; ++i) coef.set(i, i % in.c, mp[i], rp[i], weight, bias);
  std::vector<T> b(count), c0(count);
  BackwardPlan<scalar_t> plan{g,
                              dy.const_data_ptr<scalar_t>(),
                              in.x.const_data_ptr<scalar_t>(),
                              dx ? dx->mutable_data_ptr<scalar_t>() : nullptr,
                              T(slope),
                              act,
                              &coef,
                              rp,
                              &b,
                              &c0,
                              s1,
                              s2};
  plan.run();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_act_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
    double negative_slope, int64_t activation, bool need_x) {
  constexpr const char* op = "instance_norm_act_backward";
  check_norm_activation(op, activation);
  const NormInput in = prepare_norm_input(op, x, weight, bias);
  TORCH_CHECK(grad_y.sizes() == x.sizes(), op, ": grad_y must have x's shape ", x.sizes(),
              ", got ", grad_y.sizes());
  TORCH_CHECK(grad_y.scalar_type() == x.scalar_type(), op, ": grad_y must have x's dtype");
  const auto opmath = in.opmath();
  for (const at::Tensor* t : {&mean, &rstd}) {
    TORCH_CHECK(t->numel() == in.n * in.c && t->scalar_type() == opmath, op,
                ": mean and rstd must be (N, C) ", opmath, " tensors from the forward");
  }
  const at::Tensor dy = grad_y.contiguous(in.format());
  const at::Tensor m = mean.contiguous(), r = rstd.contiguous();
  at::Tensor dx = need_x ? empty_output(in.x, in.format())
                         : at::empty({0}, x.options());
  auto s1 = at::empty({in.n, in.c}, x.options().dtype(at::kDouble));
  auto s2 = at::empty_like(s1);
  if (in.x.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, in.x.scalar_type(), op, [&] {
      backward_impl<scalar_t>(in, dy, m, r, need_x ? &dx : nullptr, s1.data_ptr<double>(),
                              s2.data_ptr<double>(), negative_slope, activation);
    });
  } else {
    s1.zero_();
    s2.zero_();
  }
  // d gamma_c = sum_n rstd * S2, d beta_c = sum_n S1: a fixed-order loop over N.
  auto reduce_n = [&](const at::Tensor& part, const std::optional<at::Tensor>& like) {
    if (!like.has_value() || !like->defined()) return at::empty({0}, x.options());
    auto out = at::zeros({in.c}, x.options().dtype(at::kDouble));
    double* o = out.data_ptr<double>();
    const double* p = part.const_data_ptr<double>();
    for (int64_t n = 0; n < in.n; ++n) {
      for (int64_t c = 0; c < in.c; ++c) o[c] += p[n * in.c + c];
    }
    return out.to(like->scalar_type());
  };
  return {dx, reduce_n(s2, weight), reduce_n(s1, bias)};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CPU, m) {
  m.impl("instance_norm_act_forward", &instance_norm_act_forward);
  m.impl("instance_norm_act_backward", &instance_norm_act_backward);
}

}  // namespace fastgan::cpu
