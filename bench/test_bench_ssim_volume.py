"""SSIM on volumes, CPU: forward + backward of 1 - SSIM on 2x1x64x128x128 float32 (the
issue's target shape) for fastgan, pytorch-msssim's 3-D SSIM, the plain-PyTorch reference
eager and under torch.compile, alternating call by call (the median of the per-round
ratios, `interleaved_ratio`), and the peak extra memory of one call as a multiple of one
input, each measured in a fresh process (peak RSS, so it counts every allocation of the
kernel and the gradient it returns; not for the compiled reference, whose compilation in
the measured call would dominate).

Run: python -m pytest bench/test_bench_ssim_volume.py --benchmark-only
"""

import json
import subprocess
import sys

import pytest
import torch

import fastgan as fg
from fastgan import reference as R

from conftest import interleaved_ratio, report_side_by_side

SHAPE = (2, 1, 64, 128, 128)
ROUNDS = {"pytorch-msssim": 3, "reference": 3, "reference-compiled": 5}


def _pm_loss(x, y):
    pm = pytest.importorskip("pytorch_msssim", reason="pytorch-msssim is not installed")
    return 1 - pm.ssim(x, y, data_range=1.0)


LOSSES = {
    "fastgan": lambda x, y: fg.ssim_loss(x, y),
    "pytorch-msssim": _pm_loss,
    "reference": lambda x, y: 1 - R.ssim(x, y),
    # dynamic=False: inductor fails on this graph with dynamic shapes (a ValueRangeError)
    "reference-compiled": torch.compile(lambda x, y: 1 - R.ssim(x, y), fullgraph=True,
                                        dynamic=False),
}


def _inputs(shape=SHAPE):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    y = (x + 0.2 * torch.rand(shape, generator=g)).clamp(0, 1)
    return x.requires_grad_(), y


# One fwd + bwd in a fresh process: the growth of the peak RSS (VmHWM) over the RSS after
# the inputs exist and a small call has loaded everything (libraries, thread pool). The
# peak is reset first (clear_refs 5), so whatever imports touched does not hide the call's
# own high-water mark; glibc's default thresholds, so that freed blocks go back.
_MEMORY_PROBE = r"""
import json, sys, torch
sys.path.insert(0, "bench")
import test_bench_ssim_volume as b

def status(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(field))

fn = b.LOSSES[sys.argv[1]]
small = torch.rand(1, 1, 16, 32, 32, requires_grad=True)
fn(small, torch.rand(1, 1, 16, 32, 32)).backward()
x, y = torch.rand(b.SHAPE, requires_grad=True), torch.rand(b.SHAPE)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
fn(x, y).backward()
print(json.dumps((status("VmHWM") - before) / (x.numel() * x.element_size())))
"""


def _peak_extra_memory(impl: str) -> float:
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, impl], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


_ROWS = []


@pytest.fixture(scope="module")
def report(request):
    yield _ROWS
    report_side_by_side(request, _ROWS, "cpu-ssim-volume-side-by-side.json")


@pytest.mark.parametrize("peer", ["pytorch-msssim", "reference-compiled", "reference"])
def test_ssim_volume_fwd_bwd_side_by_side_cpu(benchmark, report, peer):
    x, y = _inputs()

    def call(fn):
        x.grad = None
        fn(x, y).backward()

    call(LOSSES[peer])  # a peer that cannot run skips here; compiles the compiled one
    call(LOSSES["fastgan"])
    benchmark.group = f"ssim volume fwd+bwd side by side {'x'.join(map(str, SHAPE))} float32 cpu"
    timed = interleaved_ratio(benchmark, lambda: call(LOSSES["fastgan"]),
                              lambda: call(LOSSES[peer]), rounds=ROUNDS[peer])
    row = dict(what="fwd+bwd", peer=peer, fastgan_ms=timed["base_ms"], peer_ms=timed["other_ms"],
               ratio=timed["ratio"])
    benchmark.extra_info.update(impl=f"{peer} side by side", fastgan_median_ms=row["fastgan_ms"],
                                peer_median_ms=row["peer_ms"])
    report.append(row)


@pytest.mark.parametrize("impl", ["fastgan", "pytorch-msssim", "reference"])
def test_ssim_volume_peak_extra_memory_cpu(benchmark, report, impl):
    if impl == "pytorch-msssim":
        pytest.importorskip("pytorch_msssim", reason="pytorch-msssim is not installed")
    peak = _peak_extra_memory(impl)
    benchmark.group = f"ssim volume peak extra memory {'x'.join(map(str, SHAPE))} float32 cpu"
    benchmark.extra_info.update(impl=impl, memory_only=True, peak_extra_memory_x_input=round(peak, 2))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    report.append(dict(what="memory", peer=impl, peak_extra_memory_x_input=peak))
