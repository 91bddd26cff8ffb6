"""Keep freed host memory in the process, so that CPU training steps stop page-faulting.

PyTorch's CPU tensors come from glibc malloc, which maps blocks above its mmap threshold
fresh from the kernel and hands trimmed heap tops back after every free. A training step
frees and re-allocates the same activations and gradients each time, so every step pays
one page fault per 4 KiB of them again: measured on the 2-core development machine, a
16x256x32x32 InstanceNorm forward + backward took 2 ms without faults and 11-12 ms in the
calls that re-faulted its two 16 MiB outputs (8,160 faults), one call in two.

``keep_freed_memory()`` raises glibc's mmap and trim thresholds (``mallopt``) so freed
blocks stay mapped and are reused: the process keeps its peak footprint instead of
returning memory between steps, as the caching allocators of jemalloc / tcmalloc or
PyTorch's CUDA allocator do. (torch's 64-byte aligned blocks fit a freed block of the same
size only after neighbours coalesce, so in a training loop the heap grows for the first few
dozen steps, then stops faulting; tests/test_host_memory.py checks the malloc mechanism
itself.) The trainer calls it for CPU runs and the benchmarks for every entry alike;
``FASTGAN_KEEP_FREED_MEMORY=0`` turns it off. Linux with glibc only; elsewhere it does
nothing and returns False.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_LIMIT = 1 << 30  # blocks up to 1 GiB stay in the heap; larger ones are still mapped fresh

_applied = False


def keep_freed_memory(limit_bytes: int = _DEFAULT_LIMIT) -> bool:
    """Ask glibc to keep and reuse freed blocks of up to ``limit_bytes``. Returns whether
    the setting is in effect (idempotent; False off glibc or when disabled by the env)."""
    global _applied
    if not isinstance(limit_bytes, int) or isinstance(limit_bytes, bool) or limit_bytes < 1:
        raise ValueError(f"keep_freed_memory: limit_bytes must be a positive int, got {limit_bytes!r}")
    if _applied:
        return True
    if os.environ.get("FASTGAN_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    int_max = 2 ** 31 - 1
    # The heap top is never trimmed; blocks above the limit keep their own mappings.
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, min(limit_bytes, int_max))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int_max))
    return _applied
