"""No buffer larger than one input: the loss ops allocate at most one image-sized
tensor (the gradient) per call, forward and backward together."""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import fastgan as fg

from conftest import needs_cpu_kernels

pytestmark = needs_cpu_kernels

LOSSES = {
    "masked_l1": lambda x, y, m: fg.masked_l1(x, y, m),
    "masked_charbonnier": lambda x, y, m: fg.masked_charbonnier(x, y, m),
    "cosine_per_image": lambda x, y, m: fg.cosine_similarity_loss(x, y, m),
    "cosine_per_pixel": lambda x, y, m: fg.cosine_similarity_loss(x, y, m, dim=1),
}


def _allocations(fn) -> list[int]:
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # self_: each allocation once, not again in every enclosing op
    return [e.self_cpu_memory_usage for e in prof.events() if e.self_cpu_memory_usage > 0]


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("upstream", [1.0, 3.0])
def test_no_allocation_larger_than_one_input(name, upstream):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 64, 64, generator=g, requires_grad=True)
    y = torch.rand(4, 3, 64, 64, generator=g)
    mask = (torch.rand(4, 1, 64, 64, generator=g) > 0.5).float()
    one_input = x.numel() * x.element_size()

    def step():
        (LOSSES[name](x, y, mask) * upstream).backward()

    step()
    x.grad = None
    sizes = _allocations(step)
    assert sizes, "the profiler saw no allocation at all"
    assert max(sizes) <= one_input
    # The gradient itself, plus at most one scaled copy of it when the upstream
    # gradient is not one; everything else is per-image and tiny.
    big = [s for s in sizes if s > one_input // 8]
    assert len(big) <= (1 if upstream == 1.0 else 2), big
