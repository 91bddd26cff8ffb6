"""SSIM family on the default backend (the C++ kernels on the CPU) against
fastgan.reference: values and gradients for every option, reductions, masks, layouts
and dtypes. Peer libraries are compared in tests/test_ssim_peers.py."""

import pytest
import torch

import fastgan as fg
from fastgan import reference as R

from conftest import make_layout, needs_cpu_kernels

pytestmark = needs_cpu_kernels

PADDINGS = ("valid", "same", "reflect")


def pair(shape=(2, 3, 40, 37), dtype=torch.float32, seed=0, noise=0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + noise * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def make_mask(kind, shape, dtype=torch.float32, seed=1):
    if kind is None:
        return None
    n, c, h, w = shape
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1 if kind == "pixel" else c, h, w, generator=g).to(dtype)


def value_and_grads(fn, x, y, upstream=None):
    x = x.detach().clone().requires_grad_()
    y = y.detach().clone().requires_grad_()
    out = fn(x, y)
    g = upstream if upstream is not None else torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    gx, gy = torch.autograd.grad(out, (x, y), grad_outputs=g)
    return out.detach(), gx, gy


def assert_close_all(got, want, rtol, atol):
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("window_size", [3, 7, 11, 15])
@pytest.mark.parametrize("mask_kind", [None, "pixel", "full"])
def test_ssim_matches_reference_float64(padding, window_size, mask_kind):
    x, y = pair(dtype=torch.float64)
    mask = make_mask(mask_kind, x.shape, torch.float64)
    opts = dict(padding=padding, window_size=window_size, mask=mask, reduction="none")
    got = value_and_grads(lambda a, b: fg.ssim(a, b, **opts), x, y)
    want = value_and_grads(lambda a, b: R.ssim(a, b, **opts), x, y)
    assert_close_all(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("nonnegative", [False, True])
def test_ssim_float32_reductions(padding, reduction, nonnegative):
    x, y = pair(noise=1.0)  # some planes with negative SSIM for the nonnegative option
    mask = make_mask("pixel", x.shape)
    opts = dict(padding=padding, mask=mask, reduction=reduction, nonnegative=nonnegative,
                data_range=1.0)
    got = value_and_grads(lambda a, b: fg.ssim(a, b, **opts), x, y)
    want = value_and_grads(lambda a, b: R.ssim(a.double(), b.double(), **opts), x.double(), y.double())
    scale = 1.0 if reduction != "sum" else float(want[0].abs()) + 1
    torch.testing.assert_close(got[0].double(), want[0], rtol=1e-5, atol=1e-6 * scale)
    for a, b in zip(got[1:], want[1:]):
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-4, atol=1e-5 * float(b.abs().max()))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_map_matches_reference(padding, data_range):
    x, y = pair(dtype=torch.float64)
    x, y = x * data_range, y * data_range
    opts = dict(padding=padding, window_size=9, data_range=data_range, sigma=2.0, k1=0.02, k2=0.05)
    got = value_and_grads(lambda a, b: fg.ssim_map(a, b, **opts), x, y)
    want = value_and_grads(lambda a, b: R.ssim_map(a, b, **opts), x, y)
    assert got[0].shape == want[0].shape
    assert_close_all(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mask_kind", [None, "full"])
@pytest.mark.parametrize("alpha", [0.0, 0.84, 1.0])
def test_ssim_l1_loss_matches_reference(padding, mask_kind, alpha):
    x, y = pair(dtype=torch.float64)
    mask = make_mask(mask_kind, x.shape, torch.float64)
    opts = dict(padding=padding, mask=mask, alpha=alpha, data_range=2.0)
    got = value_and_grads(lambda a, b: fg.ssim_l1_loss(a, b, **opts), x, y)
    want = value_and_grads(lambda a, b: R.ssim_l1_loss(a, b, **opts), x, y)
    assert_close_all(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ms_ssim_matches_reference(reduction):
    x, y = pair((2, 3, 163, 170), dtype=torch.float64, noise=0.2)
    got = value_and_grads(lambda a, b: fg.ms_ssim(a, b, reduction=reduction), x, y)
    want = value_and_grads(lambda a, b: R.ms_ssim(a, b, reduction=reduction), x, y)
    assert_close_all(got, want, rtol=1e-8, atol=1e-12)


def test_ms_ssim_custom_weights_and_window():
    x, y = pair((1, 2, 40, 45), dtype=torch.float64, noise=0.2)
    opts = dict(window_size=5, weights=[0.5, 0.3, 0.2], sigma=1.0)
    got = value_and_grads(lambda a, b: fg.ms_ssim(a, b, **opts), x, y)
    want = value_and_grads(lambda a, b: R.ms_ssim(a, b, **opts), x, y)
    assert_close_all(got, want, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("mask_kind", [None, "pixel"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_psnr_matches_reference(mask_kind, reduction):
    x, y = pair()
    mask = make_mask(mask_kind, x.shape)
    got = fg.psnr(x, y, mask=mask, reduction=reduction, data_range=1.0)
    want = R.psnr(x, y, mask=mask, reduction=reduction)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.isinf(fg.psnr(x, x)).all()


def test_ssim_loss_and_modules():
    from fastgan.losses import MSSSIMLoss, SSIML1Loss, SSIMLoss

    x, y = pair()
    mask = make_mask("pixel", x.shape)
    torch.testing.assert_close(SSIMLoss()(x, y, mask), 1 - fg.ssim(x, y, mask=mask))
    torch.testing.assert_close(SSIMLoss(reduction="none")(x, y), 1 - fg.ssim(x, y, reduction="none"))
    want_sum = (R.ssim_map(x, y) * 0 + 1 - R.ssim_map(x, y)).double().sum().float()
    torch.testing.assert_close(SSIMLoss(reduction="sum")(x, y), want_sum, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(SSIML1Loss(alpha=0.5)(x, y, mask), fg.ssim_l1_loss(x, y, alpha=0.5, mask=mask))
    xb, yb = pair((2, 3, 161, 161))
    torch.testing.assert_close(MSSSIMLoss()(xb, yb), 1 - fg.ms_ssim(xb, yb))
    torch.testing.assert_close(MSSSIMLoss(reduction="sum")(xb, yb), (1 - fg.ms_ssim(xb, yb, reduction="none")).sum())
    assert "window_size=11" in repr(SSIMLoss())


def test_identical_images_give_one_and_zero_gradient():
    x, _ = pair()
    for padding in PADDINGS:
        out, gx, gy = value_and_grads(lambda a, b: fg.ssim(a, b, padding=padding), x, x.clone())
        torch.testing.assert_close(out, torch.tensor(1.0))
        assert gx.abs().max() < 1e-6 and gy.abs().max() < 1e-6


def test_all_zero_mask_gives_zero_and_zero_gradients():
    x, y = pair()
    mask = torch.zeros(x.shape[0], 1, *x.shape[2:])
    mask[1, :, 10:20, 10:20] = 1  # image 0 fully masked out, image 1 partly
    out, gx, gy = value_and_grads(lambda a, b: fg.ssim(a, b, mask=mask, reduction="none"), x, y)
    assert out[0] == 0 and torch.isfinite(out).all()
    assert (gx[0] == 0).all() and (gy[0] == 0).all() and torch.isfinite(gx).all()
    out, gx, _ = value_and_grads(lambda a, b: fg.ssim(a, b, mask=torch.zeros_like(mask)), x, y)
    assert out == 0 and (gx == 0).all()


def test_bool_mask_equals_float_mask():
    x, y = pair()
    m = make_mask("pixel", x.shape) > 0.5
    torch.testing.assert_close(fg.ssim(x, y, mask=m), fg.ssim(x, y, mask=m.float()))


@pytest.mark.parametrize("layout", ["channels_last", "sliced"])
@pytest.mark.parametrize("padding", ["valid", "reflect"])
def test_layouts_match_contiguous(layout, padding):
    x, y = pair((2, 3, 30, 33))
    mask = make_mask("full", x.shape)
    fn = lambda a, b: fg.ssim_l1_loss(a, b, mask=mask, padding=padding, reduction="none")  # noqa: E731
    want = value_and_grads(fn, x, y)
    got = value_and_grads(fn, make_layout(x, layout), make_layout(y, layout))
    assert_close_all(got, want, rtol=0, atol=0)  # the same arithmetic, element for element
    _, gx, _ = value_and_grads(lambda a, b: fg.ssim(a, b), make_layout(x, "channels_last"), y)
    assert gx.is_contiguous(memory_format=torch.channels_last)
    sliced_mask = make_layout(mask, layout)
    torch.testing.assert_close(fg.ssim(x, y, mask=sliced_mask), fg.ssim(x, y, mask=mask), rtol=0, atol=0)


def test_gradient_for_one_input_only():
    x, y = pair()
    xg = x.clone().requires_grad_()
    fg.ssim(xg, y).backward()
    xr = x.clone().requires_grad_()
    R.ssim(xr, y).backward()
    torch.testing.assert_close(xg.grad, xr.grad, rtol=1e-4, atol=1e-7)
    yg = y.clone().requires_grad_()
    fg.ssim(x, yg, padding="same").backward()
    yr = y.clone().requires_grad_()
    R.ssim(x, yr, padding="same").backward()
    torch.testing.assert_close(yg.grad, yr.grad, rtol=1e-4, atol=1e-7)


def test_two_pass_backward_matches_fused_forward_with_grad():
    """The ssim_forward + ssim_backward pair (used when gradients are not known in
    advance, e.g. by the Triton/CUDA backends) and forward_with_grad (gradients pre-scaled
    by grad_scale, sums not) agree in float64."""
    x, y = pair(dtype=torch.float64)
    mask = make_mask("pixel", x.shape, torch.float64)
    args = (mask, 11, 1.5, 0.01, 0.03, 1.0, 2, 0, 0.0)
    sums, weights, gx, gy = torch.ops.fastgan.ssim_forward_with_grad(x, y, *args, True, True, -0.25)
    sums2, weights2 = torch.ops.fastgan.ssim_forward(x, y, *args)
    bx, by = torch.ops.fastgan.ssim_backward(torch.full_like(sums, -0.25), x, y, *args, True, True)
    for a, b in [(sums, sums2), (weights, weights2), (gx, bx), (gy, by)]:
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_large_image_with_row_bands():
    """Few planes of many rows are split into row bands (each recomputing a halo): the
    result must not depend on the split, gradients included."""
    x, y = pair((1, 1, 300, 41), dtype=torch.float64)
    for padding in PADDINGS:
        got = value_and_grads(lambda a, b: fg.ssim(a, b, padding=padding), x, y)
        want = value_and_grads(lambda a, b: R.ssim(a, b, padding=padding), x, y)
        assert_close_all(got, want, rtol=1e-9, atol=1e-12)


def test_deterministic_across_thread_counts():
    x, y = pair((3, 3, 70, 64))
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(value_and_grads(lambda a, b: fg.ssim(a, b), x, y))
    finally:
        torch.set_num_threads(before)
    assert_close_all(results[0], results[1], rtol=0, atol=0)


def _own_half(x, y, dtype):
    """PyTorch's own SSIM computed entirely in dtype (the reference maths, no upcast)."""
    g = R.gaussian_window(11, 1.5, dtype)
    mx, my = R._gaussian_filter(x, g), R._gaussian_filter(y, g)
    exx, eyy, exy = R._gaussian_filter(x * x, g), R._gaussian_filter(y * y, g), R._gaussian_filter(x * y, g)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * (exy - mx * my) + c2)) / (
        (mx * mx + my * my + c1) * (exx - mx * mx + eyy - my * my + c2))
    return s.mean()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_error_at_most_twice_pytorch_own(dtype):
    x, y = pair((2, 3, 48, 48), noise=0.2)
    exact = value_and_grads(lambda a, b: R.ssim(a.double(), b.double()), x, y)
    xl, yl = x.to(dtype), y.to(dtype)
    ours = value_and_grads(lambda a, b: fg.ssim(a, b), xl, yl)
    theirs = value_and_grads(lambda a, b: _own_half(a, b, dtype), xl, yl)
    eps = torch.finfo(dtype).eps
    for o, t, e in zip(ours, theirs, exact):
        err_ours = (o.double() - e).abs().max()
        err_theirs = (t.double() - e).abs().max()
        assert err_ours <= 2 * err_theirs + eps * e.abs().max(), (err_ours, err_theirs)
    assert ours[0].dtype == dtype and ours[1].dtype == dtype


def test_reference_backend_runs_the_reference():
    x, y = pair()
    with fg.backend("reference"):
        ref = fg.ssim(x, y, padding="reflect")
    torch.testing.assert_close(ref, R.ssim(x, y, padding="reflect"))
    torch.testing.assert_close(fg.ssim(x, y, padding="reflect"), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("upstream", [1.0, -1.0, 0.37])
@pytest.mark.parametrize("fn", ["ssim", "ssim_loss", "ssim_l1_loss"])
def test_fused_gradient_for_any_upstream_gradient(upstream, fn):
    """The fused CPU gradient is pre-scaled for an upstream gradient of one (handed over
    as is); any other upstream gradient is applied in the backward."""
    x, y = pair()
    f = getattr(fg, fn)
    got = value_and_grads(lambda a, b: f(a, b) * upstream, x, y, torch.tensor(1.0))
    want = value_and_grads(lambda a, b: getattr(R, fn, None)(a.double(), b.double()) * upstream
                           if fn != "ssim_loss" else (1 - R.ssim(a.double(), b.double())) * upstream,
                           x, y, torch.tensor(1.0, dtype=torch.float64))
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_float16_gradient_survives_a_loss_scale():
    """AMP-style loss scaling: float16 gradients of a large mean are tiny before the
    scale is applied; the fused CPU path must not have rounded them away."""
    x, y = pair((4, 3, 128, 128), noise=0.2)
    xh = x.half().requires_grad_()
    (fg.ssim(xh, y.half()).float() * 1024.0).backward()
    xr = x.half().double().requires_grad_()
    (R.ssim(xr, y.half().double()) * 1024.0).backward()
    rel = ((xh.grad.double() - xr.grad).abs() / xr.grad.abs().clamp_min(1e-12)).median()
    assert rel < 1e-3, rel  # a pre-scaled float16 gradient is off by ~5e-3 here


@pytest.mark.parametrize("avx512", ["0", "1"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_both_cpu_builds_of_the_kernel(monkeypatch, avx512, dtype):
    """The CPU core is compiled twice (build flags, and AVX-512 chosen at run time where
    the CPU has it); FASTGAN_CPU_AVX512=0 forces the first, so both run on this machine."""
    monkeypatch.setenv("FASTGAN_CPU_AVX512", avx512)
    x, y = pair((2, 3, 45, 70), dtype=dtype)
    mask = make_mask("pixel", x.shape, dtype)
    for padding, window_size in [("valid", 11), ("reflect", 7), ("same", 5)]:
        opts = dict(padding=padding, window_size=window_size, mask=mask, reduction="none")
        got = value_and_grads(lambda a, b: fg.ssim_l1_loss(a, b, **opts), x, y)
        want = value_and_grads(lambda a, b: R.ssim_l1_loss(a.double(), b.double(), **opts), x, y)
        tol = dict(rtol=1e-9, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-6)
        for a, b in zip(got, want):
            torch.testing.assert_close(a.double(), b.double(), **tol)
