"""keep_freed_memory: freed blocks stay mapped, so re-allocating them costs no page faults."""

import resource
import subprocess
import sys
import textwrap

import pytest

from fastgan.host_memory import keep_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")

# A training-like loop (16 MiB activations and gradients made and freed each step); prints
# the page faults of its steady state.
_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from fastgan.host_memory import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    torch.set_num_threads(1)
    x = torch.randn(16, 256, 32, 32, requires_grad=True)
    def step():
        x.grad = None
        (x * 2).relu().sum().backward()
    for _ in range(40):  # the heap settles (torch's aligned blocks need a few rounds to coalesce)
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True,
                         check=True, env={"FASTGAN_HUGE_PAGES": "0", "PATH": "/usr/bin:/bin"})
    return int(out.stdout.split()[-1])


def test_reallocation_stops_faulting():
    default, kept = _faults("default"), _faults("keep")
    assert default > 4096  # measured 12k-45k: 16 MiB blocks mapped afresh again and again
    assert kept < 1000


def test_bad_limit_is_named():
    with pytest.raises(ValueError, match="limit_bytes"):
        keep_freed_memory(0)
