"""Masked reconstruction losses, forward + backward, fastgan vs the plain-PyTorch
reference (eager and under torch.compile). CPU: 16x3x256x256 fp32 as in the issue;
GPU: the same plus the bytes each op must move and the achieved bandwidth.

Run: make bench   (or: python -m pytest bench -k losses --benchmark-only)
"""

import pytest
import torch

import fastgan as fg
from fastgan import reference as R

from conftest import interleaved_ratio, synchronized

SHAPE = (16, 3, 256, 256)

LOSSES = {
    "masked_l1": (lambda x, y, m: fg.masked_l1(x, y, m), lambda x, y, m: R.masked_l1(x, y, m)),
    "masked_mse": (lambda x, y, m: fg.masked_mse(x, y, m), lambda x, y, m: R.masked_mse(x, y, m)),
    "masked_charbonnier": (lambda x, y, m: fg.masked_charbonnier(x, y, m),
                           lambda x, y, m: R.masked_charbonnier(x, y, m)),
    "cosine_per_image": (lambda x, y, m: fg.cosine_similarity_loss(x, y, m),
                         lambda x, y, m: R.cosine_similarity_loss(x, y, m)),
    "cosine_per_pixel": (lambda x, y, m: fg.cosine_similarity_loss(x, y, m, dim=1),
                         lambda x, y, m: R.cosine_similarity_loss(x, y, m, dim=1)),
    "self_regularization": (lambda x, y, m: fg.self_regularization_loss(x, y),
                            lambda x, y, m: R.self_regularization_loss(x, y)),
}


def _bytes_moved(x, mask) -> int:
    """What one forward + backward must move at least: forward reads x, y (and the
    mask), backward reads x, y (and the mask) and writes grad_x."""
    mask_bytes = 0 if mask is None else mask.numel() * mask.element_size()
    return 5 * x.numel() * x.element_size() + 2 * mask_bytes


def _step(fn, x, y, mask, device):
    """One training step of loss fn: forward, backward into x.grad (reset first)."""
    def run():
        x.grad = None
        fn(x, y, mask).backward()
    return synchronized(run, device)


def _inputs(device, masked):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(SHAPE, generator=g).to(device).requires_grad_()
    y = torch.rand(SHAPE, generator=g).to(device)
    mask = (torch.rand(SHAPE[0], 1, *SHAPE[2:], generator=g) > 0.5).float().to(device) if masked else None
    return x, y, mask


@pytest.mark.parametrize("masked", [True, False], ids=["mask", "nomask"])
@pytest.mark.parametrize("impl", ["fastgan", "reference", "reference-compiled"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_forward_backward(benchmark, device, name, impl, masked):
    if name == "self_regularization" and masked:
        pytest.skip("self-regularisation takes no mask")
    fast, ref = LOSSES[name]
    fn = {"fastgan": fast, "reference": ref,
          "reference-compiled": torch.compile(ref, fullgraph=True)}[impl]
    x, y, mask = _inputs(device, masked)
    step = _step(fn, x, y, mask, device)
    for _ in range(3):  # warm-up (and compilation)
        step()
    benchmark.group = f"{name} {'mask' if masked else 'nomask'} fwd+bwd {'x'.join(map(str, SHAPE))} fp32 {device}"
    benchmark.extra_info.update(impl=impl, bytes=_bytes_moved(x, mask))
    benchmark.pedantic(step, rounds=20, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("masked", [True, False], ids=["mask", "nomask"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_against_compiled_side_by_side(benchmark, device, name, masked):
    """fastgan's step against the compiled reference's, calls alternated: the ratio the
    issue's 1.5x target is about, without the drift between groups run one after another.
    interleaved_ratio: median of compiled time / mean of the fastgan calls around it."""
    if name == "self_regularization" and masked:
        pytest.skip("self-regularisation takes no mask")
    fast, ref = LOSSES[name]
    compiled = torch.compile(ref, fullgraph=True)
    x, y, mask = _inputs(device, masked)
    ours, theirs = _step(fast, x, y, mask, device), _step(compiled, x, y, mask, device)
    for _ in range(3):  # warm-up (and compilation)
        ours()
        theirs()
    benchmark.group = (f"{name} {'mask' if masked else 'nomask'} compiled / fastgan side by side "
                       f"{'x'.join(map(str, SHAPE))} fp32 {device}")
    row = interleaved_ratio(benchmark, ours, theirs, rounds=30)
    benchmark.extra_info.update(impl="fastgan", fastgan_median_ms=row["base_ms"],
                                compiled_median_ms=row["other_ms"])


FLUSH_BYTES = 96 * 2**20  # three times this machine's 32 MB L3


@pytest.mark.parametrize("caches", ["warm", "flushed"])
@pytest.mark.parametrize("impl", ["fastgan", "reference-compiled"])
def test_step_overhead_on_tiny_input(benchmark, device, impl, caches):
    """What a loss step costs besides its kernel: a 2x3x8x8 masked cosine loss, forward and
    backward, with warm caches and right after a large buffer was rewritten, as after the
    kernels of a real step (the Python and dispatcher code then runs on cold caches)."""
    fast, ref = LOSSES["cosine_per_image"]
    fn = fast if impl == "fastgan" else torch.compile(ref, fullgraph=True)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=g).to(device).requires_grad_()
    y = torch.rand(2, 3, 8, 8, generator=g).to(device)
    mask = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float().to(device)
    step = _step(fn, x, y, mask, device)
    for _ in range(3):  # warm-up (and compilation)
        step()
    flush_buffer = torch.zeros(FLUSH_BYTES // 4, device=device)

    def flush():  # untimed, before each round; returns None (pytest-benchmark reads it as args)
        if caches == "flushed":
            flush_buffer.add_(1.0)
    benchmark.group = f"loss step overhead 2x3x8x8 cosine+mask, {caches} caches {device}"
    benchmark.extra_info.update(impl=impl)
    benchmark.pedantic(step, setup=synchronized(flush, device), rounds=200, iterations=1,
                       warmup_rounds=1)
