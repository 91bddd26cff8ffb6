"""fastgan's SSIM family on (N, C, D, H, W) volumes against the libraries users compare it
with, within 1e-5: pytorch-msssim's 3-D ssim / ms_ssim (values and gradients, through
fastgan.ssim and through the drop-in fastgan.compat.pytorch_msssim, with spatial_dims=3 and
user windows) and scikit-image's structural_similarity on 3-D arrays. A test whose peer is
not installed skips."""

import importlib
import warnings

import numpy as np
import pytest
import torch

import fastgan as fg

from conftest import needs_cpu_kernels

pytestmark = needs_cpu_kernels
ATOL = 1e-5


def pair(shape=(2, 2, 14, 18, 20), seed=0, noise=0.3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    y = (x + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return x * scale, y * scale


def _pm():
    return pytest.importorskip("pytorch_msssim", reason="pytorch-msssim is not installed")


def _grad(fn, x):
    a = x.clone().requires_grad_()
    fn(a).backward()
    return a.grad


@pytest.mark.parametrize("size_average", [True, False])
def test_ssim_matches_pytorch_msssim_3d(size_average):
    pm = _pm()
    x, y = pair(noise=0.6, scale=255.0)
    want = pm.ssim(x, y, size_average=size_average)
    got = fg.ssim(x, y, data_range=255.0, reduction="mean" if size_average else "none")
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    want, got = (_grad(fn, x / 255) for fn in (lambda a: pm.ssim(a, y / 255, data_range=1.0),
                                                lambda a: fg.ssim(a, y / 255)))
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-8)


def test_ms_ssim_matches_pytorch_msssim_3d_with_thin_scales():
    # Depth 12 halves to 6, 3, 2, 1: below the 3-tap window at the last two scales, which
    # pytorch-msssim (and fastgan) then leave unsmoothed along depth, with a warning.
    pm = _pm()
    x, y = pair((2, 2, 12, 40, 44), noise=0.1)
    opts = dict(win_size=3, weights=[0.3, 0.3, 0.2, 0.1, 0.1])
    with pytest.warns(UserWarning):
        want = pm.ms_ssim(x, y, data_range=1.0, size_average=False, **opts)
    with pytest.warns(UserWarning, match="depth"):
        got = fg.ms_ssim(x, y, window_size=3, weights=opts["weights"], reduction="none")
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want, got = (_grad(fn, x) for fn in (
            lambda a: pm.ms_ssim(a, y, data_range=1.0, **opts),
            lambda a: fg.ms_ssim(a, y, window_size=3, weights=opts["weights"])))
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-8)


def test_compat_is_a_drop_in_for_pytorch_msssim_on_volumes():
    pm = _pm()
    from fastgan.compat import pytorch_msssim as compat

    x, y = pair((2, 3, 16, 40, 44), noise=0.2, scale=255.0)
    gauss = importlib.import_module("pytorch_msssim.ssim")._fspecial_gauss_1d
    win3d = gauss(7, 1.2).repeat(3, 1, 1, 1, 1)
    box3d = torch.full((3, 1, 1, 1, 5), 0.2)  # not Gaussian: fastgan.reference runs it
    ms = dict(win_size=3, weights=[0.5, 0.3, 0.2])
    pairs = [
        (lambda a: compat.ssim(a, y), lambda a: pm.ssim(a, y)),
        (lambda a: compat.ssim(a, y, size_average=False, win_size=7, K=(0.02, 0.04)),
         lambda a: pm.ssim(a, y, size_average=False, win_size=7, K=(0.02, 0.04))),
        (lambda a: compat.ssim(a, y, win=win3d), lambda a: pm.ssim(a, y, win=win3d)),
        (lambda a: compat.ssim(a, y, win=box3d), lambda a: pm.ssim(a, y, win=box3d)),
        (lambda a: compat.SSIM(channel=3, spatial_dims=3)(a, y),
         lambda a: pm.SSIM(channel=3, spatial_dims=3)(a, y)),
        (lambda a: compat.SSIM(channel=3, spatial_dims=3, nonnegative_ssim=True)(a, y),
         lambda a: pm.SSIM(channel=3, spatial_dims=3, nonnegative_ssim=True)(a, y)),
        (lambda a: compat.ms_ssim(a, y, **ms), lambda a: pm.ms_ssim(a, y, **ms)),
        (lambda a: compat.MS_SSIM(channel=3, spatial_dims=3, **ms)(a, y),
         lambda a: pm.MS_SSIM(channel=3, spatial_dims=3, **ms)(a, y)),
    ]
    for got_fn, want_fn in pairs:
        torch.testing.assert_close(got_fn(x), want_fn(x), rtol=0, atol=ATOL)
        scaled = lambda f: (lambda a: f(a * 255).sum() * 1000)  # noqa: E731  (in [0, 1] units)
        torch.testing.assert_close(_grad(scaled(got_fn), x / 255), _grad(scaled(want_fn), x / 255),
                                   rtol=1e-3, atol=ATOL)


def test_compat_custom_window_and_short_depth():
    pm = _pm()
    from fastgan.compat import pytorch_msssim as compat

    x, y = pair((2, 3, 66, 70), noise=0.2)  # pytorch-msssim: > (5 - 1) * 16 for ms_ssim
    box = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1]).repeat(3, 1, 1, 1)  # a 2-D user window
    for got, want in [(compat.ssim(x, y, data_range=1.0, win=box), pm.ssim(x, y, data_range=1.0, win=box)),
                      (compat.ms_ssim(x, y, data_range=1.0, win=box, weights=[0.5, 0.5]),
                       pm.ms_ssim(x, y, data_range=1.0, win=box, weights=[0.5, 0.5]))]:
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    # A volume thinner than the window: smoothed in 2-D per slice, with a warning; and a
    # singleton depth squeezed to an image, as pytorch-msssim does.
    v, w = pair((2, 3, 6, 30, 32), noise=0.6)
    for kw in (dict(), dict(nonnegative_ssim=True, size_average=False)):
        with pytest.warns(UserWarning):
            want = pm.ssim(v, w, data_range=1.0, **kw)
        with pytest.warns(UserWarning, match="depth 6"):
            got = compat.ssim(v, w, data_range=1.0, **kw)
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    torch.testing.assert_close(compat.ssim(x[:, :, None], y[:, :, None], data_range=1.0),
                               pm.ssim(x[:, :, None], y[:, :, None], data_range=1.0), rtol=0, atol=ATOL)


def test_compat_bad_input_names_the_argument():
    from fastgan.compat import pytorch_msssim as compat

    x, y = pair((1, 3, 12, 16, 16))
    win2d = torch.ones(3, 1, 1, 5) / 5
    with pytest.raises(ValueError, match=r"ssim: win must be 5-D \(C, 1, 1, 1, k\) for 5-D input"):
        compat.ssim(x, y, win=win2d)
    with pytest.raises(ValueError, match=r"win must have one row per channel \(3\)"):
        compat.ssim(x, y, win=torch.ones(1, 1, 1, 1, 5) / 5)
    with pytest.raises(ValueError, match="X and Y must have the same shape"):
        compat.ssim(x, y[:, :, 0])
    with pytest.raises(ValueError, match="spatial_dims must be 2 .* or 3"):
        compat.SSIM(spatial_dims=4)
    with pytest.raises(TypeError, match="win must be a tensor"):
        compat.ms_ssim(x, y, win=[0.2] * 5)


def test_compat_modules_compile_fullgraph():
    from fastgan.compat import pytorch_msssim as compat

    torch._dynamo.reset()
    x, y = pair((1, 2, 12, 16, 18), scale=255.0)
    module = compat.SSIM(channel=2, spatial_dims=3, win_size=5)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    a = x.clone().requires_grad_()
    got = compiled(a, y)
    (grad,) = torch.autograd.grad(got, a)
    torch.testing.assert_close(got, module(x, y))
    torch.testing.assert_close(grad, _grad(lambda t: module(t, y), x))
    with pytest.raises(ValueError, match=r"spatial_dims=3 takes 5-D input"):
        module(x[:, :, 0], y[:, :, 0])


def test_ssim_matches_scikit_image_3d():
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed")
    for data_range in (1.0, 255.0):
        x, y = pair((2, 1, 15, 17, 19), scale=data_range)
        want = torch.tensor([
            metrics.structural_similarity(a[0].double().numpy(), b[0].double().numpy(),
                                          gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=data_range)
            for a, b in zip(x, y)])
        got = fg.ssim(x, y, data_range=data_range, reduction="none")
        torch.testing.assert_close(got.double(), want, rtol=0, atol=ATOL)
        assert np.isfinite(want.numpy()).all()
