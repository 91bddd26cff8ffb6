// The compute core of a CPU SSIM kernel compiled twice, with the build's flags and for
// AVX-512 (picked at run time: a build for AVX2 or the baseline still uses 512-bit vectors
// where the CPU has them; FASTGAN_CPU_AVX512=0 forces the first), and band_fn<T>(win),
// the core's entry run_band<T, WIN> for a window (cpu/ssim_rows.h, pick_window).
//
// Included once by each kernel file (cpu/ssim.cpp, cpu/ssim_volume.cpp) inside its own
// namespace, after it defines FASTGAN_SSIM_CORE (the core's header) and everything the
// core uses: no include guard.

namespace base {
#include "cpu/ssim_filters.h"
#include FASTGAN_SSIM_CORE
}  // namespace base

#ifdef FASTGAN_HAVE_AVX512_BUILD
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,prefer-vector-width=512")
namespace avx512 {
#include "cpu/ssim_filters.h"
#include FASTGAN_SSIM_CORE
}  // namespace avx512
#pragma GCC pop_options
#endif

template <typename T>
auto band_fn(int win) {
#ifdef FASTGAN_HAVE_AVX512_BUILD
  if (use_avx512()) return pick_window<T>(win, []<int WIN>() { return &avx512::run_band<T, WIN>; });
#endif
  return pick_window<T>(win, []<int WIN>() { return &base::run_band<T, WIN>; });
}
