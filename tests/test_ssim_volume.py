"""The SSIM family on (N, C, D, H, W) volumes: the fused CPU kernels against
fastgan.reference (values and gradients, every padding, stat and mask kind, several depth
bands, half precision, layouts), gradcheck in float64, opcheck of the ops with 5-D inputs,
torch.compile(fullgraph=True) and bad input. Shapes are tiny: the suite runs on 2 cores."""

import pytest
import torch

import fastgan as fg
from fastgan.losses import MSSSIMLoss, SSIML1Loss, SSIMLoss

from conftest import assert_compiled_matches_eager, needs_cpu_kernels

pytestmark = needs_cpu_kernels
SHAPE = (2, 2, 9, 10, 11)


def pair(shape=SHAPE, dtype=torch.float64, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def volume_mask(shape=SHAPE, channels=1, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((shape[0], channels, *shape[2:]), generator=g, dtype=torch.float64).to(dtype)


def value_and_grads(fn, x, y):
    x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
    out = fn(x, y)
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    return (out.detach(), *torch.autograd.grad(out, (x, y), grad_outputs=weights))


def assert_matches_reference(fn, x, y, **tol):
    got = value_and_grads(fn, x, y)
    with fg.backend("reference"):
        want = value_and_grads(fn, x.double(), y.double())
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, **(tol or dict(rtol=1e-9, atol=1e-12)))


FUNCTIONS = {
    "ssim": lambda x, y, m, p: fg.ssim(x, y, mask=m, padding=p, window_size=5, reduction="none"),
    "ssim_loss_sum": lambda x, y, m, p: fg.ssim_loss(x, y, mask=m, padding=p, window_size=3,
                                                     reduction="sum"),
    "ssim_map": lambda x, y, m, p: fg.ssim_map(x, y, padding=p, window_size=5),
    "ssim_l1": lambda x, y, m, p: fg.ssim_l1_loss(x, y, mask=m, padding=p, window_size=3),
    "ms_ssim": lambda x, y, m, p: fg.ms_ssim(x, y, padding=p, window_size=3, weights=[0.6, 0.4],
                                             reduction="none"),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("padding", ["valid", "same", "reflect"])
def test_matches_reference(name, padding):
    x, y = pair()
    mask = volume_mask()
    assert_matches_reference(lambda a, b: FUNCTIONS[name](a, b, mask, padding), x, y)


@pytest.mark.parametrize("name", ["ssim", "ssim_map", "ssim_l1", "ms_ssim"])
@pytest.mark.parametrize("padding", ["valid", "reflect"])
def test_gradcheck_float64(name, padding):
    x, y = (t.requires_grad_() for t in pair((1, 2, 7, 6, 8)))
    mask = volume_mask((1, 2, 7, 6, 8), channels=2)
    fn = FUNCTIONS[name]
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, mask, padding), (x, y), fast_mode=True)


def test_two_pass_backward_matches_fused_gradient():
    # ssim_forward + ssim_backward (the op called directly) against forward_with_grad.
    x, y = pair()
    mask = volume_mask(channels=2)
    args = (5, 1.5, 0.01, 0.03, 1.0, 2, 0, 0.84)
    F = torch.ops.fastgan
    sums, _, gx, gy = F.ssim_forward_with_grad(x, y, mask, *args, True, True, 1.0)
    bx, by = F.ssim_backward(torch.ones_like(sums), x, y, mask, *args, True, True)
    torch.testing.assert_close(bx, gx, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(by, gy, rtol=1e-12, atol=1e-14)
    xr = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a: F.ssim_forward(a, y, mask, *args)[0], (xr,),
                                    fast_mode=True)


@pytest.mark.parametrize("padding", ["valid", "same", "reflect"])
def test_several_depth_bands_float32(padding):
    # One volume of 80 slices: two depth bands (bands of >= 32 map slices), each writing
    # the gradient of its own slices; float32 on the compile-time window path.
    x, y = pair((1, 1, 80, 12, 13), dtype=torch.float32)
    mask = volume_mask((1, 1, 80, 12, 13), dtype=torch.float32)
    assert_matches_reference(lambda a, b: fg.ssim(a, b, mask=mask, padding=padding, window_size=7),
                             x, y, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_accumulates_in_float32(dtype):
    x, y = pair(dtype=dtype)
    got = fg.ssim(x, y, window_size=5)
    want = fg.ssim(x.double(), y.double(), window_size=5)  # the rounded inputs, exactly
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), want, rtol=0, atol=float(torch.finfo(dtype).eps))
    xr = x.detach().requires_grad_()
    fg.ssim_loss(xr, y, window_size=5).backward()
    xd = x.double().requires_grad_()
    fg.ssim_loss(xd, y.double(), window_size=5).backward()
    assert xr.grad.dtype == dtype
    torch.testing.assert_close(xr.grad.double(), xd.grad, rtol=2e-2, atol=1e-4)


@pytest.mark.parametrize("layout", ["channels_last_3d", "sliced"])
def test_layouts(layout):
    x, y = pair()
    if layout == "channels_last_3d":
        a, b = (t.contiguous(memory_format=torch.channels_last_3d) for t in (x, y))
    else:
        a, b = (torch.cat([t, t], dim=4)[..., ::2] for t in (x, y))
        x, y = a.contiguous(), b.contiguous()
    for fn in (lambda p, q: fg.ssim(p, q, window_size=5, padding="same"),
               lambda p, q: fg.ssim_map(p, q, window_size=3)):
        got, want = value_and_grads(fn, a, b), value_and_grads(fn, x, y)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)
    if layout == "channels_last_3d":
        gx = value_and_grads(lambda p, q: fg.ssim(p, q, window_size=5), a, b)[1]
        assert gx.is_contiguous(memory_format=torch.channels_last_3d)


def test_loss_modules_take_volumes():
    x, y = pair((1, 2, 12, 40, 44), dtype=torch.float32)
    mask = volume_mask((1, 2, 12, 40, 44), dtype=torch.float32)
    with pytest.warns(UserWarning, match="depth"):  # the coarse scales are thinner than 3
        ms = MSSSIMLoss(window_size=3)(x, y)
    losses = [SSIMLoss()(x, y, mask), SSIML1Loss(window_size=5)(x, y, mask), ms]
    with fg.backend("reference"), pytest.warns(UserWarning, match="depth"):
        want = [SSIMLoss()(x, y, mask), SSIML1Loss(window_size=5)(x, y, mask),
                MSSSIMLoss(window_size=3)(x, y)]
    for got, w in zip(losses, want):
        torch.testing.assert_close(got, w, rtol=1e-5, atol=1e-6)


def _op_samples():
    F = torch.ops.fastgan
    samples = []
    for padding, stat, mask_channels in [(0, 0, None), (2, 2, 1), (1, 1, 2)]:
        x, y = pair((1, 2, 6, 7, 8), dtype=torch.float32)
        mask = None if mask_channels is None else volume_mask((1, 2, 6, 7, 8), mask_channels,
                                                              torch.float32)
        x, y = x.requires_grad_(), y.requires_grad_()
        args = (3, 1.5, 0.01, 0.03, 1.0, padding, stat, 0.84)
        samples.append((F.ssim_forward, (x, y, mask, *args)))
        samples.append((F.ssim_forward_with_grad, (x.detach(), y.detach(), mask, *args, True,
                                                   stat == 0, 0.5)))
        sums, _ = F.ssim_forward(x, y, mask, *args)
        samples.append((F.ssim_backward, (torch.rand_like(sums), x.detach(), y.detach(), mask,
                                          *args, True, padding == 0)))
        samples.append((F.ssim_map_forward, (x, y, *args)))
        m = F.ssim_map_forward(x, y, *args)
        samples.append((F.ssim_map_backward, (torch.rand_like(m), x.detach(), y.detach(), *args,
                                              padding != 1, True)))
    return samples


@pytest.mark.parametrize("index", range(15))
def test_opcheck(index):
    op, args = _op_samples()[index]
    torch.library.opcheck(op, args)


COMPILED = {
    "ssim_masked": lambda x, y, m: fg.ssim(x, y, mask=m, window_size=5),
    "ssim_map": lambda x, y, m: fg.ssim_map(x, y, padding="reflect", window_size=3).mean(),
    "ssim_l1": lambda x, y, m: fg.ssim_l1_loss(x, y, mask=m, window_size=3),
    "ms_ssim": lambda x, y, m: fg.ms_ssim(x, y, window_size=3, weights=[0.5, 0.5]),
}


@pytest.mark.parametrize("name", list(COMPILED))
def test_compile_fullgraph_matches_eager(name):
    torch._dynamo.reset()
    x, y = (t.requires_grad_() for t in pair((1, 2, 8, 12, 13), dtype=torch.float32))
    mask = volume_mask((1, 2, 8, 12, 13), dtype=torch.float32)
    assert_compiled_matches_eager(lambda a, b, m: COMPILED[name](a, b, m) * 3.0, x, y, mask)


def test_bad_input_names_the_argument():
    x, y = pair((1, 1, 9, 12, 12))
    with pytest.raises(RuntimeError, match="a depth of 9 is smaller than the window"):
        torch.ops.fastgan.ssim_forward(x, y, None, 11, 1.5, 0.01, 0.03, 1.0, 0, 0, 0.0)
    with pytest.raises(ValueError, match=r"ssim: x has depth 9 .* smaller than the window \(11\)"):
        fg.ssim(x, y)
    with pytest.raises(ValueError, match=r"ssim_map: x has depth 9"):
        fg.ssim_map(x, y)
    x, y = pair()
    with pytest.raises(ValueError, match="x and y must have the same rank"):
        fg.ssim(x, y[:, :, 0])
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\) or 5-D \(N, C, D, H, W\)"):
        fg.ssim(x[None], y[None], window_size=3)
    with pytest.raises(ValueError, match=r"mask must have shape \(N, 1, D, H, W\)"):
        fg.ssim(x, y, window_size=3, mask=volume_mask()[:, :, 0])
