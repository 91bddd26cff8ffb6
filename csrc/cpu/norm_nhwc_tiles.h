// NHWC InstanceNorm + activation loops with the per-channel state in registers.
//
// Included once inside an AVX-512 target region (cpu/instance_norm_act.cpp); used for
// float (and float16 / bfloat16, staged as float) when C is a multiple of 16. The plain
// NHWC loops walk each pixel's C channels and, C being dozens to hundreds, keep every
// per-channel value in L1 arrays: each vector of data then costs 5-7 more loads (mean,
// scale, bias, b, c0, two accumulators) and two stores. Here a block of up to 64
// channels (4 vectors of 16) is walked down the pixels of a chunk with its coefficients
// and accumulators held in 12-20 of the 32 vector registers: a vector of data costs its
// own loads and stores only. Blocks of a chunk are visited one after another, each a
// strided sweep (C floats apart) reading its 64-256 contiguous bytes per pixel.
//
// GCC vector extensions: 16-float vectors, unaligned loads and stores through a 4-byte
// aligned may_alias type, selects for the activation (no branches). Outputs (y, dx) are
// written with streaming stores when 64-byte aligned (always, for torch's CPU tensors):
// no read-for-ownership of the output lines, and the image being read a second time is not
// evicted by them; this took channels_last from 1.05-1.22x the NCHW time to parity.

namespace norm_tiles {

typedef float vf __attribute__((vector_size(64)));
typedef float vf_unaligned __attribute__((vector_size(64), aligned(4), may_alias));
typedef int vi __attribute__((vector_size(64)));

constexpr int kV = 16;          // floats per vector
constexpr int kMaxBlock = 4;    // vectors per channel block

inline vf load(const float* p) { return *reinterpret_cast<const vf_unaligned*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vf_unaligned*>(p) = v; }
// Streaming store of a 64-byte aligned vector: no read-for-ownership of the line, and the
// output does not evict the input that the same pass still has to read.
#ifdef FASTGAN_HAVE_AVX512_BUILD
inline void store_stream(float* p, vf v) { _mm512_stream_ps(p, v); }
#else
inline void store_stream(float* p, vf v) { store(p, v); }
#endif
template <bool STREAM>
inline void store_out(float* p, vf v) {
  if constexpr (STREAM) {
    store_stream(p, v);
  } else {
    store(p, v);
  }
}
inline vf splat(float v) { return vf{} + v; }

// NB vectors of per-channel values (a block's mean, scale, bias...) into registers.
template <int NB>
inline void load_block(vf (&out)[NB], const float* src) {
  for (int j = 0; j < NB; ++j) out[j] = load(src + j * kV);
}

// The activation, and its derivative times g; the slope applies at z == 0 (as
// norm_activation in common/norm_act.h).
template <int ACT>
inline vf activate(vf z, vf slope) {
  if constexpr (ACT == kActLeakyReLU) {
    return z > vf{} ? z : z * slope;
  } else {
    return z;
  }
}

template <int ACT>
inline vf activate_grad(vf z, vf g, vf slope) {
  if constexpr (ACT == kActLeakyReLU) {
    return z > vf{} ? g : g * slope;
  } else {
    return g;
  }
}

// Chunk moments of NB * 16 channels: the sum (two rows a step, two accumulator sets),
// then the squares about that mean with the deviation sum, as plane_moments.
template <int NB>
void moments_block(const float* x, int64_t pixels, int64_t c, double* mean, double* m2) {
  vf s0[NB] = {}, s1[NB] = {};
  int64_t p = 0;
  for (; p + 2 <= pixels; p += 2) {
    const float* r0 = x + p * c;
    const float* r1 = r0 + c;
    for (int j = 0; j < NB; ++j) {
      s0[j] += load(r0 + j * kV);
      s1[j] += load(r1 + j * kV);
    }
  }
  if (p < pixels) {
    for (int j = 0; j < NB; ++j) s0[j] += load(x + p * c + j * kV);
  }
  vf m[NB], q[NB] = {}, d[NB] = {};
  const vf inv = splat(1.0f / float(pixels));
  for (int j = 0; j < NB; ++j) m[j] = (s0[j] + s1[j]) * inv;
  for (p = 0; p < pixels; ++p) {
    const float* r = x + p * c;
    for (int j = 0; j < NB; ++j) {
      const vf v = load(r + j * kV) - m[j];
      d[j] += v;
      q[j] += v * v;
    }
  }
  const double np = double(pixels);
  for (int j = 0; j < NB; ++j) {
    for (int l = 0; l < kV; ++l) {
      const double dd = double(d[j][l]);
      mean[j * kV + l] = double(m[j][l]) + dd / np;
      m2[j * kV + l] = double(q[j][l]) - dd * dd / np;
    }
  }
}

// A block's normalisation in registers: z = a (x - mean) + beta, then the activation.
template <int NB, int ACT>
struct BlockAffine {
  vf m[NB], av[NB], bv[NB], sl;

  BlockAffine(const float* mean, const float* a, const float* beta, float slope) {
    load_block(m, mean);
    load_block(av, a);
    load_block(bv, beta);
    sl = splat(slope);
  }
  inline vf out(const float* xr, int j) const {
    return activate<ACT>(av[j] * (load(xr + j * kV) - m[j]) + bv[j], sl);
  }
  // The upstream gradient through the activation, and the centred input v = x - mean.
  inline vf grad(const float* xr, const float* gr, int j, vf& v) const {
    v = load(xr + j * kV) - m[j];
    return activate_grad<ACT>(av[j] * v + bv[j], load(gr + j * kV), sl);
  }
};

template <int NB, int ACT, bool STREAM>
void forward_block(const float* x, float* y, int64_t pixels, int64_t c, const float* mean,
                   const float* a, const float* beta, float slope) {
  const BlockAffine<NB, ACT> f(mean, a, beta, slope);
  for (int64_t p = 0; p < pixels; ++p) {
    const float* xr = x + p * c;
    float* yr = y + p * c;
    for (int j = 0; j < NB; ++j) store_out<STREAM>(yr + j * kV, f.out(xr, j));
  }
}

// Adds sum g and sum g (x - mean) of the block's channels to s1, s2. The float sums
// run over segments of kSegment pixels and are added into the float64 totals after each,
// so no float chain is longer than kSegment terms (the weight / bias gradients sum them).
constexpr int64_t kSegment = 64;

inline void add_to_doubles(double* dst, vf v) {
  float lanes[kV];
  store(lanes, v);
  for (int l = 0; l < kV; ++l) dst[l] += double(lanes[l]);  // vectorised: no lane extracts
}

template <int NB, int ACT>
void grad_sums_block(const float* dy, const float* x, int64_t pixels, int64_t c,
                     const float* mean, const float* a, const float* beta, float slope,
                     double* s1, double* s2) {
  const BlockAffine<NB, ACT> f(mean, a, beta, slope);
  for (int64_t p0 = 0; p0 < pixels; p0 += kSegment) {
    vf t1[NB] = {}, t2[NB] = {};
    const int64_t p1 = p0 + kSegment < pixels ? p0 + kSegment : pixels;
    for (int64_t p = p0; p < p1; ++p) {
      const float* xr = x + p * c;
      const float* gr = dy + p * c;
      for (int j = 0; j < NB; ++j) {
        vf v;
        const vf g = f.grad(xr, gr, j, v);
        t1[j] += g;
        t2[j] += g * v;
      }
    }
    for (int j = 0; j < NB; ++j) {
      add_to_doubles(s1 + j * kV, t1[j]);
      add_to_doubles(s2 + j * kV, t2[j]);
    }
  }
}

template <int NB, int ACT, bool STREAM>
void grad_apply_block(const float* dy, const float* x, float* dx, int64_t pixels, int64_t c,
                      const float* mean, const float* a, const float* beta, float slope,
                      const float* b, const float* c0) {
  const BlockAffine<NB, ACT> f(mean, a, beta, slope);
  vf bb[NB], cc[NB];
  load_block(bb, b);
  load_block(cc, c0);
  for (int64_t p = 0; p < pixels; ++p) {
    const float* xr = x + p * c;
    const float* gr = dy + p * c;
    float* dr = dx + p * c;
    for (int j = 0; j < NB; ++j) {
      vf v;
      const vf g = f.grad(xr, gr, j, v);
      store_out<STREAM>(dr + j * kV, f.av[j] * g + (bb[j] * v + cc[j]));
    }
  }
}

// Calls fn(std::integral_constant<int, NB>, first channel) for each block of the C
// channels: blocks of 4 vectors, then one of the 1-3 left.
template <typename Fn>
void for_each_block(int64_t c, Fn&& fn) {
  int64_t ch = 0;
  for (; ch + kMaxBlock * kV <= c; ch += kMaxBlock * kV) fn(std::integral_constant<int, 4>{}, ch);
  switch ((c - ch) / kV) {
    case 3: fn(std::integral_constant<int, 3>{}, ch); break;
    case 2: fn(std::integral_constant<int, 2>{}, ch); break;
    case 1: fn(std::integral_constant<int, 1>{}, ch); break;
    default: break;
  }
}

// ---- the chunk-level entry points (C % 16 == 0) ----------------------------------------

inline void moments(const float* x, int64_t pixels, int64_t c, double* mean, double* m2) {
  for_each_block(c, [&](auto nb, int64_t ch) {
    moments_block<decltype(nb)::value>(x + ch, pixels, c, mean + ch, m2 + ch);
  });
}

template <int ACT>
void forward_apply(const float* x, float* y, int64_t pixels, int64_t c, const float* mean,
                   const float* a, const float* beta, float slope) {
  auto run = [&](auto stream) {
    for_each_block(c, [&](auto nb, int64_t ch) {
      forward_block<decltype(nb)::value, ACT, decltype(stream)::value>(
          x + ch, y + ch, pixels, c, mean + ch, a + ch, beta + ch, slope);
    });
  };
  if (aligned_to<64>(y)) {
    run(std::true_type{});  // the caller fences once per thread, not per chunk
  } else {
    run(std::false_type{});
  }
}

template <int ACT>
void grad_sums(const float* dy, const float* x, int64_t pixels, int64_t c, const float* mean,
               const float* a, const float* beta, float slope, double* s1, double* s2) {
  for_each_block(c, [&](auto nb, int64_t ch) {
    grad_sums_block<decltype(nb)::value, ACT>(dy + ch, x + ch, pixels, c, mean + ch, a + ch,
                                              beta + ch, slope, s1 + ch, s2 + ch);
  });
}

template <int ACT>
void grad_apply(const float* dy, const float* x, float* dx, int64_t pixels, int64_t c,
                const float* mean, const float* a, const float* beta, float slope,
                const float* b, const float* c0) {
  auto run = [&](auto stream) {
    for_each_block(c, [&](auto nb, int64_t ch) {
      grad_apply_block<decltype(nb)::value, ACT, decltype(stream)::value>(
          dy + ch, x + ch, dx + ch, pixels, c, mean + ch, a + ch, beta + ch, slope, b + ch, c0 + ch);
    });
  };
  if (aligned_to<64>(dx)) {
    run(std::true_type{});  // the caller fences once per thread
  } else {
    run(std::false_type{});
  }
}

}  // namespace norm_tiles
