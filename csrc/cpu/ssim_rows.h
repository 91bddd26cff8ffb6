// Host-side building blocks shared by the CPU SSIM kernels for images (cpu/ssim.cpp) and
// for volumes (cpu/ssim_volume.cpp): row input/output in any float dtype and stride,
// strided views of 4-D and 5-D tensors, padded lines, scratch storage, the bands a plane
// is split into, and the per-plane sums handed back to Python.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/ssim_checks.h"
#include "common/ssim_common.h"
#include "common/ssim_host.h"

namespace fastgan::cpu::ssim_rows {

template <typename scalar_t>
using opmath_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

template <typename scalar_t, typename T>
void load_row(const void* src, int64_t stride, int64_t n, T* __restrict out) {
  const scalar_t* s = static_cast<const scalar_t*>(src);
  if (stride == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = T(s[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = T(s[i * stride]);
  }
}

template <typename scalar_t, typename T>
void store_row(const T* __restrict in, void* dst, int64_t stride, int64_t n) {
  scalar_t* d = static_cast<scalar_t*>(dst);
  if (stride == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = scalar_t(in[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * stride] = scalar_t(in[i]);
  }
}

// Loads and stores of one dtype, converting to and from opmath T.
template <typename T>
struct RowIO {
  void (*load)(const void*, int64_t, int64_t, T*) = nullptr;
  void (*store)(const T*, void*, int64_t, int64_t) = nullptr;
  int64_t elem = 0;
};

template <typename T>
RowIO<T> row_io(at::ScalarType st) {
  RowIO<T> io;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, st, "ssim_row_io", [&] {
    io.load = &load_row<scalar_t, T>;
    io.store = &store_row<scalar_t, T>;
    io.elem = sizeof(scalar_t);
  });
  return io;
}

// A strided (N, C, [D,] H, W) tensor: byte base and element strides (stride 0 broadcasts;
// sd = 0 for 4-D tensors).
struct View {
  const char* data = nullptr;
  int64_t sn = 0, sc = 0, sd = 0, sh = 0, sw = 0;
  bool defined() const { return data != nullptr; }
};

inline View view_of(const at::Tensor& t) {
  View v;
  if (!t.defined()) return v;
  const int64_t k = t.dim();
  v.data = static_cast<const char*>(t.const_data_ptr());
  v.sn = t.stride(0);
  v.sc = t.size(1) == 1 ? 0 : t.stride(1);
  v.sd = k == 5 ? t.stride(2) : 0;
  v.sh = t.stride(k - 2);
  v.sw = t.stride(k - 1);
  return v;
}

// torch's "reflect" index (the edge not repeated) of j in [-n + 1, 2n - 2].
inline int64_t reflect_index(int64_t j, int64_t n) {
  if (j < 0) return -j;
  if (j >= n) return 2 * (n - 1) - j;
  return j;
}

// One padded line: w values of the image line at src (element stride sw), with pad zeros
// or reflected values on each side -> out[0 .. w + 2 pad).
template <typename T>
void load_padded_line(const RowIO<T>& io, const char* src, int64_t sw, int64_t w, int64_t pad,
                      int64_t padding, T* out) {
  io.load(src, sw, w, out + pad);
  if (pad == 0) return;
  if (padding == kPadZero) {
    std::fill(out, out + pad, T(0));
    std::fill(out + pad + w, out + w + 2 * pad, T(0));
    return;
  }
  for (int64_t c = 0; c < pad; ++c) {
    out[c] = out[2 * pad - c];
    out[pad + w + c] = out[pad + w - 2 - c];
  }
}

// Scratch rows of one task, laid out in one aligned buffer.
template <typename T>
struct Scratch {
  std::vector<T> storage;
  int64_t stride = 0;
  T* base = nullptr;
  int64_t next = 0;
  void allocate(int64_t rows, int64_t row_stride) {
    stride = row_stride;
    storage.resize(rows * stride + 64 / sizeof(T));
    auto addr = reinterpret_cast<uintptr_t>(storage.data());
    base = storage.data() + ((64 - addr % 64) % 64) / sizeof(T);
    next = 0;
  }
  T* row() { return base + (next++) * stride; }
  std::vector<T*> rows(int64_t k) {
    std::vector<T*> v(k);
    for (auto& p : v) p = row();
    return v;
  }
};

// A row stride (elements) that keeps rows 64-byte aligned, with room for n values.
inline int64_t aligned_stride(int64_t n) { return (n + 16 + 15) / 16 * 16; }

struct BandSums {
  double wv = 0.0, w = 0.0;
};

// A band of the streamed axis (rows of an image, slices of a volume).
struct Band {
  int64_t o0, o1;    // outputs whose values this band sums / writes
  int64_t p0, p1;    // padded inputs whose gradient this band writes
  int64_t oc0, oc1;  // outputs computed
};

// Band b of `bands` over `outputs` map positions (padded input length `padded`, window
// radius r). A band with gradients recomputes r outputs beyond each of its ends.
inline Band make_band(int64_t outputs, int64_t padded, int r, int64_t bands, int64_t b,
                      bool grad) {
  Band band;
  band.o0 = b * outputs / bands;
  band.o1 = (b + 1) * outputs / bands;
  const bool first = b == 0, last = b == bands - 1;
  if (grad) {
    band.p0 = first ? 0 : band.o0 + r;
    band.p1 = last ? padded : band.o1 + r;
    band.oc0 = std::max<int64_t>(0, band.p0 - 2 * r);
    band.oc1 = last ? outputs : std::min(outputs, band.p1);
  } else {
    band.p0 = band.p1 = 0;
    band.oc0 = band.o0;
    band.oc1 = band.o1;
  }
  return band;
}

// Bands per plane: enough tasks for a many-core machine (kTargetTasks over all planes),
// bands at least kMinBand long; fixed by the shape only, so results are deterministic.
constexpr int64_t kTargetTasks = 32;
constexpr int64_t kMinBand = 32;

inline int64_t band_count(int64_t planes, int64_t outputs) {
  const int64_t want = (kTargetTasks + planes - 1) / std::max<int64_t>(planes, 1);
  return std::max<int64_t>(1, std::min(want, outputs / kMinBand));
}

template <typename T>
std::array<T, kMaxWindow> make_window(const SsimParams& p) {
  double w[kMaxWindow];
  ssim_window(int(p.win), p.sigma, w);
  std::array<T, kMaxWindow> out{};
  for (int i = 0; i < p.win; ++i) out[i] = T(w[i]);
  return out;
}

// The per-plane sums as (N, C) tensors in opmath (float32, float64 for float64 x).
inline std::tuple<at::Tensor, at::Tensor> sums_tensors(const std::vector<BandSums>& sums,
                                                       const at::Tensor& x) {
  const auto opmath = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto s = at::empty({x.size(0), x.size(1)}, x.options().dtype(at::kDouble));
  auto w = at::empty_like(s);
  double* sp = s.data_ptr<double>();
  double* wp = w.data_ptr<double>();
  for (size_t i = 0; i < sums.size(); ++i) {
    sp[i] = sums[i].wv;
    wp[i] = sums[i].w;
  }
  return {s.to(opmath), w.to(opmath)};
}

// What the cores of images and volumes share in their job description: the maths, the
// inputs, the gradient factors and outputs, the map. The geometry is each core's own.
template <typename T>
struct JobCommon {
  int64_t stat = kStatSsim;
  SsimConsts<T> k{};
  std::array<T, kMaxWindow> window{};
  RowIO<T> io;  // x, y, gradients, map and grad map (one dtype)
  View x, y, mask, grad_map;
  // The gradients are those of sum_planes factor[plane] * sums[plane] (backward), or of
  // scale * sum_planes sums[plane] (forward_with_grad); the sums are never scaled.
  const double* factor = nullptr;
  double scale = 1.0;
  bool grad = false, need_x = false, need_y = false;
  char* gx = nullptr;
  char* gy = nullptr;
  int64_t gsn = 0, gsc = 0, gsd = 0, gsh = 0, gsw = 0;  // gradient element strides (gsd: 5-D)
  char* map = nullptr;                                  // the map, contiguous
  // Reflect padding: the image rows (volumes: slices) of the streamed axis that receive
  // folded gradient rows (slices), -> slot or -1; fold_rows slots.
  std::vector<int> fold_slot;
  int fold_rows = 0;
};

// The parameters and inputs of a job.
template <typename T>
void init_job(JobCommon<T>& job, const at::Tensor& x, const at::Tensor& y, const SsimParams& p) {
  job.stat = p.stat;
  job.k = make_ssim_consts<T>(p);
  job.window = make_window<T>(p);
  job.io = row_io<T>(x.scalar_type());
  job.x = view_of(x);
  job.y = view_of(y);
}

// Allocates the gradients asked for (empty tensors otherwise) and points the job at them;
// for reflect padding, the fold slots of a streamed axis of `length` with padding `pad`.
template <typename T>
void set_grad_outputs(JobCommon<T>& job, const at::Tensor& x, bool need_x, bool need_y,
                      int64_t length, int64_t pad, int64_t padding, at::Tensor& gx,
                      at::Tensor& gy) {
  job.grad = true;
  job.need_x = need_x;
  job.need_y = need_y;
  gx = need_x ? empty_ssim_grad(x) : at::empty({0}, x.options());
  gy = need_y ? empty_ssim_grad(x) : at::empty({0}, x.options());
  const at::Tensor& ref = need_x ? gx : gy;
  if (need_x || need_y) {
    const int64_t k = ref.dim();
    job.gsn = ref.stride(0);
    job.gsc = ref.stride(1);
    job.gsd = k == 5 ? ref.stride(2) : 0;
    job.gsh = ref.stride(k - 2);
    job.gsw = ref.stride(k - 1);
  }
  job.gx = need_x ? static_cast<char*>(gx.mutable_data_ptr()) : nullptr;
  job.gy = need_y ? static_cast<char*>(gy.mutable_data_ptr()) : nullptr;
  if (padding == kPadReflect) {
    // Rows (slices) 1..pad and n-1-pad..n-2 receive the reflected padding ones.
    job.fold_slot.assign(length, -1);
    int next = 0;
    for (int64_t j = 0; j < length; ++j) {
      if ((j >= 1 && j <= pad) || (j >= length - 1 - pad && j <= length - 2)) job.fold_slot[j] = next++;
    }
    job.fold_rows = next;
  }
}

// at.template operator()<WIN>() (a core's entry for a compile-time window) for window
// win: the fast paths for float, with fully unrolled filters; the runtime window (WIN = 0)
// otherwise.
template <typename T, typename At>
auto pick_window(int win, At&& at) {
  if constexpr (std::is_same_v<T, float>) {
    switch (win) {
      case 3: return at.template operator()<3>();
      case 5: return at.template operator()<5>();
      case 7: return at.template operator()<7>();
      case 9: return at.template operator()<9>();
      case 11: return at.template operator()<11>();
      case 13: return at.template operator()<13>();
      case 15: return at.template operator()<15>();
      default: break;
    }
  }
  return at.template operator()<0>();
}

// Runs task(state, plane, band) for every (plane, band) in parallel (state = make_state(),
// once per chunk of tasks: scratch memory); returns the per-plane sums, added in a fixed
// order whatever the thread count.
template <typename MakeState, typename Task>
std::vector<BandSums> run_tasks(int64_t planes, int64_t bands, MakeState&& make_state,
                                Task&& task) {
  const int64_t tasks = planes * bands;
  std::vector<BandSums> part(tasks);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    auto state = make_state();
    for (int64_t t = begin; t < end; ++t) part[t] = task(state, t / bands, t % bands);
  });
  std::vector<BandSums> out(planes);
  for (int64_t t = 0; t < tasks; ++t) {
    out[t / bands].wv += part[t].wv;
    out[t / bands].w += part[t].w;
  }
  return out;
}

template <typename Fn>
void dispatch_opmath(at::ScalarType st, Fn&& fn) {
  if (st == at::kDouble) {
    fn.template operator()<double>();
  } else {
    fn.template operator()<float>();
  }
}

}  // namespace fastgan::cpu::ssim_rows
