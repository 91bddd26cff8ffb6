"""keep_freed_memory: freed blocks stay mapped, so re-allocating them costs no page faults."""

import resource
import subprocess
import sys
import textwrap

import pytest

from fastgan.host_memory import keep_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")

# Touch and free a 64 MiB malloc block five times; print the page faults. By default glibc
# maps a block that large afresh each time (mmap, then munmap on free): 16,384 faults a round.
# With keep_freed_memory it comes from the heap and is reused as it is. (Training steps do
# the same through torch's allocator; the heap settles after a few dozen steps there, see
# fastgan/host_memory.py, which this deterministic check leaves to the benchmarks.)
_SCRIPT = textwrap.dedent("""
    import ctypes, resource, sys
    from fastgan.host_memory import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    n = 64 << 20
    def round_trip():
        p = libc.malloc(n)
        ctypes.memset(p, 1, n)
        libc.free(p)
    round_trip()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        round_trip()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True,
                         check=True, env={"FASTGAN_HUGE_PAGES": "0", "PATH": "/usr/bin:/bin"})
    return int(out.stdout.split()[-1])


def test_reallocation_stops_faulting():
    default, kept = _faults("default"), _faults("keep")
    assert default >= 5 * 16384 * 0.9  # every round maps the 64 MiB afresh
    assert kept < 1000


def test_bad_limit_is_named():
    with pytest.raises(ValueError, match="limit_bytes"):
        keep_freed_memory(0)
