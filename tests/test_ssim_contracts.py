"""Custom-op contracts of the SSIM family: gradcheck in float64 on tiny shapes, opcheck
(schema, fake tensors, autograd registration) and torch.compile(fullgraph=True)."""

import pytest
import torch

import fastgan as fg

from conftest import assert_compiled_matches_eager, make_layout, needs_cpu_kernels

pytestmark = needs_cpu_kernels


def _tiny(shape=(2, 2, 9, 8), layout="contiguous", mask_kind=None, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = make_layout(torch.rand(shape, generator=g, dtype=dtype), layout)
    y = make_layout((x + 0.5 * torch.rand(shape, generator=g, dtype=dtype)).clamp(0, 1), layout)
    n, c, h, w = shape
    mask = {None: None, "pixel": torch.rand(n, 1, h, w, generator=g, dtype=dtype),
            "full": torch.rand(n, c, h, w, generator=g, dtype=dtype)}[mask_kind]
    return x.requires_grad_(), y.requires_grad_(), mask


FUNCTIONS = {
    "ssim": lambda x, y, m, p: fg.ssim(x, y, mask=m, padding=p, window_size=5, reduction="none"),
    "ssim_nonneg": lambda x, y, m, p: fg.ssim(x, y, mask=m, padding=p, window_size=3,
                                              nonnegative=True),
    "ssim_map": lambda x, y, m, p: fg.ssim_map(x, y, padding=p, window_size=5),
    "ssim_l1": lambda x, y, m, p: fg.ssim_l1_loss(x, y, mask=m, padding=p, window_size=3,
                                                  reduction="sum"),
    "ms_ssim": lambda x, y, m, p: fg.ms_ssim(x, y, padding=p, window_size=3, weights=[0.6, 0.4]),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("padding", ["valid", "same", "reflect"])
def test_gradcheck_float64(name, padding):
    x, y, mask = _tiny(mask_kind="pixel")
    fn = FUNCTIONS[name]
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, mask, padding), (x, y), fast_mode=True)


def test_gradcheck_two_pass_backward_and_second_layout():
    # The ssim_forward / ssim_backward pair (the op called directly: no fused gradient),
    # in channels_last with a full mask.
    x, y, mask = _tiny(layout="channels_last", mask_kind="full")

    def fn(a, b):
        return torch.ops.fastgan.ssim_forward(a, b, mask, 3, 1.5, 0.01, 0.03, 1.0, 2, 0, 0.0)[0]

    assert torch.autograd.gradcheck(fn, (x, y), fast_mode=True)


def _op_samples():
    F = torch.ops.fastgan
    samples = []
    for layout, mask_kind, padding, stat in [("contiguous", None, 0, 0), ("channels_last", "pixel", 2, 2),
                                             ("contiguous", "full", 1, 1)]:
        x, y, mask = _tiny(layout=layout, mask_kind=mask_kind, dtype=torch.float32)
        args = (7, 1.5, 0.01, 0.03, 1.0, padding, stat, 0.84)
        samples.append((F.ssim_forward, (x, y, mask, *args)))
        samples.append((F.ssim_forward_with_grad, (x.detach(), y.detach(), mask, *args, True, stat == 0, 0.5)))
        sums, _ = F.ssim_forward(x, y, mask, *args)
        samples.append((F.ssim_backward, (torch.rand_like(sums), x.detach(), y.detach(), mask, *args,
                                          True, layout == "contiguous")))
        samples.append((F.ssim_map_forward, (x, y, *args)))
        m = F.ssim_map_forward(x, y, *args)
        samples.append((F.ssim_map_backward, (torch.rand_like(m), x.detach(), y.detach(), *args,
                                              layout == "contiguous", True)))
    return samples


@pytest.mark.parametrize("index", range(len(_op_samples())))
def test_opcheck(index):
    op, args = _op_samples()[index]
    torch.library.opcheck(op, args)


COMPILED = {
    "ssim_masked": lambda x, y, m: fg.ssim(x, y, mask=m),
    "ssim_loss": lambda x, y, m: fg.ssim_loss(x, y, padding="same"),
    "ssim_map": lambda x, y, m: fg.ssim_map(x, y, padding="reflect").mean(),
    "ssim_l1": lambda x, y, m: fg.ssim_l1_loss(x, y, mask=m),
    "ms_ssim": lambda x, y, m: fg.ms_ssim(x, y, window_size=3, weights=[0.5, 0.5]),
}


@pytest.mark.parametrize("name", list(COMPILED))
def test_compile_fullgraph_matches_eager(name):
    torch._dynamo.reset()
    fn = COMPILED[name]
    x, y, mask = _tiny((2, 3, 12, 13), mask_kind="pixel", dtype=torch.float32)
    assert_compiled_matches_eager(lambda a, b, m: fn(a, b, m) * 3.0, x, y, mask)


def test_compile_inductor_training_step_has_no_graph_break():
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    from fastgan.losses import SSIML1Loss, SSIMLoss

    counters.clear()
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    ssim_loss, mix = SSIMLoss(), SSIML1Loss()

    def loss_fn(x, target, mask):
        out = torch.sigmoid(conv(x))
        return ssim_loss(out, target, mask) + mix(out, target)

    x, y, mask = _tiny((2, 3, 16, 16), mask_kind="pixel", dtype=torch.float32)
    x, y = x.detach(), y.detach()
    eager = loss_fn(x, y, mask)
    eager.backward()
    want = conv.weight.grad.clone()
    conv.weight.grad = None
    conv.bias.grad = None
    compiled = torch.compile(loss_fn, fullgraph=True)
    got = compiled(x, y, mask)
    got.backward()
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(conv.weight.grad, want, rtol=1e-4, atol=1e-6)
    assert not counters["graph_break"]
