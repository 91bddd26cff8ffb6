"""SSIM family: fastgan against the plain-PyTorch reference (eager and torch.compile) and
the libraries users pick instead (pytorch-msssim, piq, kornia, torchmetrics, scikit-image;
fused-ssim on a GPU when it is installed there), side by side in one run.

CPU (the issue's targets): forward + backward of SSIM on 8x3x256x256 float32, and the
forward-only metric against scikit-image. GPU: forward + backward on 8x3x256x256,
32x3x256x256 and 1x3x1080x1920 in float32 and bfloat16, with the bytes the op must move
(achieved GB/s in the table) and the peak extra memory as a multiple of one input.

Run: make bench   (or: python -m pytest bench/test_bench_ssim.py --benchmark-only)
A peer that is not installed is skipped (piq imports torchvision, which has no CPU build
on some machines).
"""

import importlib

import pytest
import torch

import fastgan as fg
from fastgan import reference as R

from conftest import interleaved_ratio, report_side_by_side, synchronized

CPU_SHAPE = (8, 3, 256, 256)
GPU_SHAPES = [(8, 3, 256, 256), (32, 3, 256, 256), (1, 3, 1080, 1920)]
PEER_ROUNDS = 5  # the peers take ~1 s per call on a 2-core CPU


def _peer(name):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, or a peer whose own imports fail
        pytest.skip(f"{name} is not usable here: {exc}")


def _fused_ssim_loss(x, y):
    fused = _peer("fused_ssim")
    return 1 - fused.fused_ssim(x, y)


# impl -> loss function (1 - SSIM, "valid" padding unless the library only has its own)
def _ssim_losses():
    def pm(x, y):
        return 1 - _peer("pytorch_msssim").ssim(x, y, data_range=1.0)

    def piq(x, y):
        return _peer("piq").SSIMLoss(data_range=1.0)(x, y)

    def kornia(x, y):
        return _peer("kornia").losses.ssim_loss(x, y, window_size=11, max_val=1.0)

    def torchmetrics(x, y):
        tm = _peer("torchmetrics.functional.image")
        return 1 - tm.structural_similarity_index_measure(x, y, data_range=1.0)

    def triton(x, y):
        with fg.backend("triton"):
            return fg.ssim_loss(x, y)

    return {
        "fastgan": lambda x, y: fg.ssim_loss(x, y),
        "fastgan-triton": triton,
        "reference": lambda x, y: 1 - R.ssim(x, y),
        "reference-compiled": torch.compile(lambda x, y: 1 - R.ssim(x, y), fullgraph=True),
        "pytorch-msssim": pm,
        "piq": piq,
        "kornia": kornia,
        "torchmetrics": torchmetrics,
        "fused-ssim": _fused_ssim_loss,
    }


LOSSES = _ssim_losses()


def _inputs(shape, device, dtype=torch.float32, grad=True):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    y = (x + 0.2 * torch.rand(shape, generator=g)).clamp(0, 1)
    x, y = x.to(device=device, dtype=dtype), y.to(device=device, dtype=dtype)
    return x.requires_grad_(grad), y


def _bytes_fwd_bwd(x) -> int:
    """At least: the forward reads x and y, the backward reads them again and writes
    grad_x (a fused CPU pass reads them once: the figure is the two-pass minimum)."""
    return 5 * x.numel() * x.element_size()


def _run_fwd_bwd(benchmark, device, impl, shape, dtype, rounds):
    fn = LOSSES[impl]
    if impl in ("fused-ssim", "fastgan-triton") and device != "cuda":
        pytest.skip(f"{impl} is measured on CUDA only")
    x, y = _inputs(shape, device, dtype)

    def step():
        x.grad = None
        fn(x, y).backward()

    step()  # import / compile / warm-up; a peer that cannot run skips here
    step()
    peak = None
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / (x.numel() * x.element_size())
    dt = str(dtype).replace("torch.", "")
    benchmark.group = f"ssim fwd+bwd {'x'.join(map(str, shape))} {dt} {device}"
    benchmark.extra_info.update(impl=impl, bytes=_bytes_fwd_bwd(x))
    if peak is not None:
        benchmark.extra_info["peak_extra_memory_x_input"] = round(peak, 2)
    benchmark.pedantic(synchronized(step, device), rounds=rounds, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("impl", list(LOSSES))
def test_ssim_forward_backward_cpu(benchmark, impl):
    rounds = 20 if impl == "fastgan" else PEER_ROUNDS
    _run_fwd_bwd(benchmark, "cpu", impl, CPU_SHAPE, torch.float32, rounds)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("impl", ["fastgan", "fastgan-triton", "reference", "reference-compiled",
                                  "pytorch-msssim", "fused-ssim"])
def test_ssim_forward_backward_gpu(benchmark, impl, shape, dtype):
    if impl == "fused-ssim" and dtype != torch.float32:
        pytest.skip("fused-ssim takes float32 only")
    _run_fwd_bwd(benchmark, "cuda", impl, shape, dtype, 50)


# Forward-only metric: SSIM values, no gradient.
def _skimage_ssim(x, y):
    metrics = _peer("skimage.metrics")
    xs, ys = x.double().numpy(), y.double().numpy()
    return [metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=1.0,
                                          channel_axis=0) for a, b in zip(xs, ys)]


METRICS = {
    "fastgan": lambda x, y: fg.ssim(x, y),
    "scikit-image": _skimage_ssim,
    "pytorch-msssim": lambda x, y: _peer("pytorch_msssim").ssim(x, y, data_range=1.0),
    "torchmetrics": lambda x, y: _peer("torchmetrics.functional.image")
    .structural_similarity_index_measure(x, y, data_range=1.0),
    "kornia": lambda x, y: _peer("kornia").metrics.ssim(x, y, 11, max_val=1.0).mean(),
}


@pytest.mark.parametrize("impl", list(METRICS))
def test_ssim_metric_forward_cpu(benchmark, impl):
    fn = METRICS[impl]
    x, y = _inputs(CPU_SHAPE, "cpu", grad=False)

    def step():
        with torch.no_grad():
            return fn(x, y)

    step()
    benchmark.group = f"ssim metric fwd {'x'.join(map(str, CPU_SHAPE))} float32 cpu"
    benchmark.extra_info.update(impl=impl, bytes=2 * x.numel() * x.element_size())
    benchmark.pedantic(step, rounds=20 if impl == "fastgan" else PEER_ROUNDS, iterations=1,
                       warmup_rounds=1)


# The rest of the family against the reference and pytorch-msssim.
OTHERS = {
    "ms_ssim": {
        "fastgan": lambda x, y: 1 - fg.ms_ssim(x, y),
        "reference": lambda x, y: 1 - R.ms_ssim(x, y),
        "pytorch-msssim": lambda x, y: 1 - _peer("pytorch_msssim").ms_ssim(x, y, data_range=1.0),
    },
    "ssim_l1_loss": {
        "fastgan": lambda x, y: fg.ssim_l1_loss(x, y),
        "reference": lambda x, y: R.ssim_l1_loss(x, y),
    },
    "ssim_masked": {
        "fastgan": lambda x, y: fg.ssim_loss(x, y, mask=_MASK[0]),
        "reference": lambda x, y: 1 - R.ssim(x, y, mask=_MASK[0]),
    },
}
_MASK = []


@pytest.mark.parametrize("name,impl", [(n, i) for n, impls in OTHERS.items() for i in impls])
def test_family_forward_backward(benchmark, device, name, impl):
    x, y = _inputs(CPU_SHAPE, device)
    if not _MASK:
        g = torch.Generator().manual_seed(1)
        _MASK.append((torch.rand(CPU_SHAPE[0], 1, *CPU_SHAPE[2:], generator=g) > 0.3).float())
    _MASK[0] = _MASK[0].to(device)
    fn = OTHERS[name][impl]

    def step():
        x.grad = None
        fn(x, y).backward()

    step()
    benchmark.group = f"{name} fwd+bwd {'x'.join(map(str, CPU_SHAPE))} float32 {device}"
    benchmark.extra_info.update(impl=impl, bytes=_bytes_fwd_bwd(x))
    rounds = 20 if impl == "fastgan" else PEER_ROUNDS
    benchmark.pedantic(synchronized(step, device), rounds=rounds, iterations=1, warmup_rounds=1)


# Side by side in time: on a shared machine the load changes between one benchmark and
# the next, so the ratio against each CPU peer is also measured with the two alternating
# call by call (the median of the per-round ratios), and printed at the end of the run.
_INTERLEAVED = []


@pytest.fixture(scope="module")
def interleaved_report(request):
    yield _INTERLEAVED
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    report_side_by_side(request, _INTERLEAVED, f"{dev}-ssim-side-by-side.json")


@pytest.mark.parametrize("what", ["fwd+bwd", "metric fwd"])
@pytest.mark.parametrize("peer", ["pytorch-msssim", "piq", "kornia", "torchmetrics", "scikit-image"])
def test_ssim_side_by_side_cpu(benchmark, interleaved_report, what, peer):
    if what == "fwd+bwd":
        if peer == "scikit-image":
            pytest.skip("scikit-image has no gradient")
        ours, theirs = LOSSES["fastgan"], LOSSES[peer]
    else:
        if peer == "piq":
            pytest.skip("piq's metric is its loss without the gradient (see fwd+bwd)")
        ours, theirs = METRICS["fastgan"], METRICS[peer]
    x, y = _inputs(CPU_SHAPE, "cpu", grad=what == "fwd+bwd")

    def call(fn):
        if what == "fwd+bwd":
            x.grad = None
            fn(x, y).backward()
        else:
            with torch.no_grad():
                fn(x, y)

    call(theirs)  # a peer that cannot run skips here
    call(ours)
    benchmark.group = f"ssim {what} side by side {'x'.join(map(str, CPU_SHAPE))} float32 cpu"
    timed = interleaved_ratio(benchmark, lambda: call(ours), lambda: call(theirs), rounds=PEER_ROUNDS)
    row = dict(what=what, peer=peer, fastgan_ms=timed["base_ms"], peer_ms=timed["other_ms"],
               ratio=timed["ratio"])
    benchmark.extra_info.update(impl=f"{peer} side by side", fastgan_median_ms=row["fastgan_ms"],
                                peer_median_ms=row["peer_ms"])
    interleaved_report.append(row)
