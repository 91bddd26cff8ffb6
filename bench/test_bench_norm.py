"""InstanceNorm + LeakyReLU(0.2), forward + backward (gradients for x, weight and bias),
fastgan's fused op against the eager pair nn.InstanceNorm2d(affine=True) + nn.LeakyReLU
and that pair under torch.compile, in NCHW and channels_last, at the issue's shapes:
16x64x128x128 (a PatchGAN / U-Net level at 256 px) and 16x256x32x32 (a deeper level).

Bytes each step must move at least: forward reads x and writes y, backward reads dy and
x and writes dx: 5 tensors (on a GPU the table prints the achieved GB/s against it).

Run: .venv/bin/python -m pytest bench/test_bench_norm.py --benchmark-only
"""

import pytest
import torch
from torch import nn

import fastgan as fg

from conftest import interleaved_ratio, synchronized

SHAPES = [(16, 64, 128, 128), (16, 256, 32, 32)]
SLOPE = 0.2


def _eager(c, device):
    return nn.Sequential(nn.InstanceNorm2d(c, affine=True), nn.LeakyReLU(SLOPE)).to(device)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("impl", ["fastgan", "reference", "reference-compiled"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_instance_norm_act_forward_backward(benchmark, device, shape, impl, layout):
    g = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = (torch.randn(shape, generator=g) * 2 + 1).to(device).contiguous(memory_format=fmt)
    x.requires_grad_()
    dy = torch.randn(shape, generator=g).to(device).contiguous(memory_format=fmt)
    c = shape[1]
    if impl == "fastgan":
        weight = torch.randn(c, generator=g).to(device).requires_grad_()
        bias = torch.randn(c, generator=g).to(device).requires_grad_()
        params = (weight, bias)

        def fn(t):
            return fg.instance_norm_act(t, weight, bias, negative_slope=SLOPE)
    else:
        module = _eager(c, device)
        params = tuple(module.parameters())
        fn = module if impl == "reference" else torch.compile(module, fullgraph=True)

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        fn(x).backward(dy)

    for _ in range(3):  # warm-up (and compilation)
        step()
    benchmark.group = f"instance_norm_act fwd+bwd {'x'.join(map(str, shape))} {layout} fp32 {device}"
    benchmark.extra_info.update(impl=impl, bytes=5 * x.numel() * x.element_size())
    benchmark.pedantic(synchronized(step, device), rounds=15, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_channels_last_against_nchw_side_by_side(benchmark, device, shape):
    """fastgan's channels_last step against its NCHW step, calls alternated (this shared
    machine's speed drifts between groups run one after the other). interleaved_ratio:
    median of channels_last time / mean of the NCHW calls just before and after it."""
    g = torch.Generator().manual_seed(0)
    steps = {}
    for layout, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        x = (torch.randn(shape, generator=g) * 2 + 1).to(device).contiguous(memory_format=fmt)
        x.requires_grad_()
        dy = torch.randn(shape, generator=g).to(device).contiguous(memory_format=fmt)
        w = torch.randn(shape[1], generator=g).to(device).requires_grad_()
        b = torch.randn(shape[1], generator=g).to(device).requires_grad_()

        def step(x=x, dy=dy, w=w, b=b):
            x.grad = w.grad = b.grad = None
            fg.instance_norm_act(x, w, b, negative_slope=SLOPE).backward(dy)

        steps[layout] = synchronized(step, device)
        for _ in range(3):
            steps[layout]()
    benchmark.group = f"instance_norm_act channels_last / nchw side by side {'x'.join(map(str, shape))} fp32 {device}"
    row = interleaved_ratio(benchmark, steps["nchw"], steps["channels_last"], rounds=30)
    benchmark.extra_info.update(impl="fastgan", nchw_median_ms=row["base_ms"],
                                channels_last_median_ms=row["other_ms"])
