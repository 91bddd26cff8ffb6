// Output tensors of many megabytes, backed by transparent huge pages where Linux offers
// them on request (THP mode "madvise", the common default).
//
// Each training step's activations and gradients are new memory: glibc serves every
// allocation above 32 MiB with a fresh mmap, and smaller ones often come from a heap top
// that was trimmed since. With 4 KiB pages the kernel takes one fault per page, and for a
// 64 MiB tensor that costs several times the kernel's own work (~25 ms against ~4 ms on
// the development machine). Advising the region before its first touch makes that 32
// faults on 2 MiB pages. torch offers the same globally (THP_MEM_ALLOC_ENABLE=1); this
// applies it to the outputs of fastgan's kernels of 32 MiB or more only (only the 2 MiB
// aligned interior is advised, which the output fills completely). FASTGAN_HUGE_PAGES=0
// turns it off. Why 32 MiB: glibc's largest mmap threshold. Smaller blocks come back from
// the heap still mapped after their first use, and advising them only added stalls: with
// THP defrag "madvise" a fault in an advised region may compact memory synchronously
// (16 MiB outputs, measured: a 2.2 ms op took 20 ms one call in four).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastgan::cpu {

constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugePageMinBytes = size_t(32) << 20;

inline bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("FASTGAN_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// Advises the 2 MiB-aligned part of t's storage as huge pages; call before writing t.
inline void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const size_t bytes = t.nbytes();
  if (bytes < kHugePageMinBytes || !huge_pages_enabled()) return;
  const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (begin + bytes) & ~(kHugePage - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

// at::empty_like(like) in memory format fmt, advised as huge pages when large.
inline at::Tensor empty_output(const at::Tensor& like, at::MemoryFormat fmt) {
  at::Tensor out = at::empty_like(like, like.options().memory_format(fmt));
  advise_huge_pages(out);
  return out;
}

}  // namespace fastgan::cpu
