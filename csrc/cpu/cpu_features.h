// Run-time choice of the AVX-512 builds of the CPU cores (SSIM, NHWC InstanceNorm).
// FASTGAN_CPU_AVX512=0 in the environment selects the build's own flags instead; it is
// read per call, so that the tests can run both paths on an AVX-512 machine.
#pragma once

#include <cstdlib>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(_M_X64))
#define FASTGAN_HAVE_AVX512_BUILD 1
#endif

namespace fastgan::cpu {

inline bool use_avx512() {
#ifdef FASTGAN_HAVE_AVX512_BUILD
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  const char* env = std::getenv("FASTGAN_CPU_AVX512");
  return ok && !(env != nullptr && env[0] == '0');
#else
  return false;
#endif
}

}  // namespace fastgan::cpu
