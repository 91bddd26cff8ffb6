"""Custom-op contracts of the compiled loss ops: gradcheck in float64, opcheck
(schema, fake tensors, autograd registration) and torch.compile(fullgraph=True)."""

import pytest
import torch

import fastgan as fg

from conftest import assert_compiled_matches_eager, make_layout, needs_cpu_kernels

pytestmark = needs_cpu_kernels


def _tiny(layout="contiguous", mask_kind="pixel", seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = make_layout(torch.randn(2, 3, 5, 4, generator=g, dtype=dtype), layout).requires_grad_()
    y = make_layout(torch.randn(2, 3, 5, 4, generator=g, dtype=dtype), layout).requires_grad_()
    mask = {"none": None,
            "pixel": torch.rand(2, 1, 5, 4, generator=g, dtype=dtype),
            "full": torch.rand(2, 3, 5, 4, generator=g, dtype=dtype)}[mask_kind]
    return x, y, mask


FUNCTIONS = {
    "l1": lambda x, y, m, r: fg.masked_l1(x, y, m, reduction=r),
    "mse": lambda x, y, m, r: fg.masked_mse(x, y, m, reduction=r),
    "charbonnier": lambda x, y, m, r: fg.masked_charbonnier(x, y, m, eps=0.1, reduction=r),
    "cosine": lambda x, y, m, r: fg.cosine_similarity_loss(x, y, m, reduction=r),
    "cosine_pixel": lambda x, y, m, r: fg.cosine_similarity_loss(x, y, m, reduction=r, dim=1),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("mask_kind", ["none", "pixel", "full"])
def test_gradcheck_float64(name, reduction, mask_kind):
    x, y, mask = _tiny(mask_kind=mask_kind)
    if name == "l1":  # keep |x - y| away from the kink at 0
        y = (y.detach() + 0.5 * torch.sign(y.detach() - x.detach())).requires_grad_()
    fn = FUNCTIONS[name]
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, mask, reduction), (x, y))


def _op_samples():
    F = torch.ops.fastgan
    samples = []
    for layout in ("contiguous", "channels_last"):
        for mask_kind in ("none", "pixel", "full"):
            for reduction in (0, 1, 2):
                x, y, mask = _tiny(layout, mask_kind, dtype=torch.float32)
                samples.append((F.masked_loss_forward, (x, y, mask, 1, 0.0, reduction)))
                samples.append((F.masked_loss_forward_with_grad, (x, y, mask, reduction, 0.5, reduction)))
                for dim in (0, 1):
                    samples.append((F.cosine_loss_forward_with_grad,
                                    (x, y, mask, dim, 1e-8, reduction, True, True)))
                samples.append((F.cosine_loss_forward, (x, y, mask, reduction % 2, 1e-8, reduction)))
                loss, ws = F.masked_loss_forward(x, y, mask, 0, 0.0, reduction)
                grad = torch.ones_like(loss)
                samples.append((F.masked_loss_backward,
                                (grad, x.detach(), y.detach(), mask, ws, 0, 0.0, reduction)))
                for dim in (0, 1):
                    loss, stats = F.cosine_loss_forward(x, y, mask, dim, 1e-8, reduction)
                    samples.append((F.cosine_loss_backward,
                                    (torch.ones_like(loss), x.detach(), y.detach(), mask, stats,
                                     dim, 1e-8, reduction, True, layout == "contiguous")))
    return samples


@pytest.mark.parametrize("index", range(len(_op_samples())))
def test_opcheck(index):
    op, args = _op_samples()[index]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_compile_fullgraph_matches_eager(name):
    torch._dynamo.reset()
    fn = FUNCTIONS[name]
    x, y, mask = _tiny(dtype=torch.float32)
    assert_compiled_matches_eager(lambda a, b, m: fn(a, b, m, "mean") * 10.0, x, y, mask)


def test_compile_inductor_training_step_has_no_graph_break():
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def loss_fn(x, target, mask):
        out = conv(x)
        return (fg.masked_l1(out, target, mask) + fg.cosine_similarity_loss(out, target, mask)
                + fg.self_regularization_loss(out, x))

    x, y, mask = _tiny(dtype=torch.float32)
    x, y = x.detach(), y.detach()
    compiled = torch.compile(loss_fn, fullgraph=True)  # inductor, forward and backward
    eager_loss = loss_fn(x, y, mask)
    eager_loss.backward()
    eager_grad = conv.weight.grad.clone()
    conv.weight.grad = None
    conv.bias.grad = None
    compiled_loss = compiled(x, y, mask)
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss)
    torch.testing.assert_close(conv.weight.grad, eager_grad, rtol=1e-4, atol=1e-5)
    assert not counters["graph_break"]
