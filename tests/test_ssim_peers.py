"""fastgan's SSIM family against the libraries users compare it with: scikit-image
(padding "valid"), pytorch-msssim (ssim, ms_ssim, nonnegative_ssim; and the compat
module), torchmetrics >= 1.4.2 and kornia (padding "reflect"), within 1e-5, on random
images and on real faces from ../shared/data. A test whose peer is not installed skips."""

import importlib

import numpy as np
import pytest
import torch

import fastgan as fg

from conftest import needs_cpu_kernels

pytestmark = needs_cpu_kernels
ATOL = 1e-5


def pair(shape=(2, 3, 48, 52), seed=0, noise=0.3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    y = (x + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return x * scale, y * scale


def load_faces(faces_dir, count=6):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to read the face JPEGs")
    files = sorted(faces_dir.glob("*.jpg"))[8000:8000 + count]  # the validation split
    imgs = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0 for f in files]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


def skimage_ssim(x, y, data_range):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed")
    return torch.tensor([
        metrics.structural_similarity(a.double().numpy(), b.double().numpy(), gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False,
                                      data_range=data_range, channel_axis=0)
        for a, b in zip(x, y)])


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_valid_matches_scikit_image_random(data_range):
    x, y = pair(scale=data_range)
    want = skimage_ssim(x, y, data_range)
    got = fg.ssim(x, y, data_range=data_range, reduction="none")
    torch.testing.assert_close(got.double(), want, rtol=0, atol=ATOL)


def test_valid_matches_scikit_image_real_faces(faces_dir):
    faces = load_faces(faces_dir)
    # Different faces, and each face against a noisy and a blurred copy of itself.
    g = torch.Generator().manual_seed(0)
    noisy = (faces + 0.05 * torch.randn(faces.shape, generator=g)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(faces, 3, stride=1, padding=1, count_include_pad=False)
    for x, y in [(faces, faces.roll(1, 0)), (faces, noisy), (faces, blurred)]:
        want = skimage_ssim(x, y, 1.0)
        got = fg.ssim(x, y, data_range=1.0, reduction="none")
        torch.testing.assert_close(got.double(), want, rtol=0, atol=ATOL)


def _pytorch_msssim():
    return pytest.importorskip("pytorch_msssim", reason="pytorch-msssim is not installed")


@pytest.mark.parametrize("size_average", [True, False])
@pytest.mark.parametrize("nonnegative", [False, True])
def test_ssim_matches_pytorch_msssim(size_average, nonnegative):
    pm = _pytorch_msssim()
    x, y = pair(noise=0.8, scale=255.0)  # noisy enough for some negative channel SSIMs
    want = pm.ssim(x, y, data_range=255, size_average=size_average, nonnegative_ssim=nonnegative)
    got = fg.ssim(x, y, data_range=255.0, reduction="mean" if size_average else "none",
                  nonnegative=nonnegative)
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


def _grad_wrt_first(fn, x):
    """d fn(a) / d a at a = x (fn returns a scalar)."""
    a = x.clone().requires_grad_()
    fn(a).backward()
    return a.grad


def test_ssim_gradient_matches_pytorch_msssim():
    pm = _pytorch_msssim()
    x, y = pair()
    want, got = (_grad_wrt_first(fn, x) for fn in (lambda a: pm.ssim(a, y, data_range=1.0),
                                                    lambda a: fg.ssim(a, y)))
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("size_average", [True, False])
def test_ms_ssim_matches_pytorch_msssim(size_average):
    pm = _pytorch_msssim()
    x, y = pair((2, 3, 161, 175), noise=0.1)
    want = pm.ms_ssim(x, y, data_range=1.0, size_average=size_average)
    got = fg.ms_ssim(x, y, data_range=1.0, reduction="mean" if size_average else "none")
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    want, got = (_grad_wrt_first(fn, x) for fn in (lambda a: pm.ms_ssim(a, y, data_range=1.0),
                                                    lambda a: fg.ms_ssim(a, y)))
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-7)


def test_compat_module_is_a_drop_in_for_pytorch_msssim():
    pm = _pytorch_msssim()
    from fastgan.compat import pytorch_msssim as compat

    x, y = pair((2, 3, 161, 170), noise=0.1, scale=255.0)
    pairs = [
        (compat.ssim(x, y), pm.ssim(x, y)),
        (compat.ssim(x, y, size_average=False, win_size=7, win_sigma=1.0, K=(0.02, 0.04)),
         pm.ssim(x, y, size_average=False, win_size=7, win_sigma=1.0, K=(0.02, 0.04))),
        (compat.ms_ssim(x, y), pm.ms_ssim(x, y)),
        (compat.ms_ssim(x, y, weights=[0.5, 0.5], win_size=5),
         pm.ms_ssim(x, y, weights=[0.5, 0.5], win_size=5)),
        (compat.SSIM(channel=3)(x, y), pm.SSIM(channel=3)(x, y)),
        (compat.MS_SSIM(size_average=False)(x, y), pm.MS_SSIM(size_average=False)(x, y)),
        (compat.SSIM(nonnegative_ssim=True)(x, y), pm.SSIM(nonnegative_ssim=True)(x, y)),
    ]
    win = importlib.import_module("pytorch_msssim.ssim")._fspecial_gauss_1d(7, 2.0).repeat(3, 1, 1, 1)
    pairs.append((compat.ssim(x, y, win=win), pm.ssim(x, y, win=win)))
    box = torch.full((3, 1, 1, 5), 0.2)  # not a Gaussian: runs on the reference
    pairs.append((compat.ssim(x, y, win=box), pm.ssim(x, y, win=box)))
    for got, want in pairs:
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match="win must be 4-D"):
        compat.ssim(x, y, win=torch.ones(1, 1, 5) / 5)
    with pytest.raises(ValueError, match="odd"):
        compat.SSIM(win_size=10)


def test_reflect_matches_torchmetrics():
    tm = pytest.importorskip("torchmetrics.functional.image",
                             reason="torchmetrics is not installed")
    import torchmetrics

    if tuple(int(p) for p in torchmetrics.__version__.split(".")[:3]) < (1, 4, 2):
        pytest.skip(f"torchmetrics {torchmetrics.__version__} crops the map (>= 1.4.2 needed)")
    x, y = pair()
    want = tm.structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    got = fg.ssim(x, y, data_range=1.0, padding="reflect", reduction="none")
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    want = tm.structural_similarity_index_measure(x * 255, y * 255, data_range=255.0)
    torch.testing.assert_close(fg.ssim(x * 255, y * 255, data_range=255.0, padding="reflect"), want,
                               rtol=0, atol=ATOL)


def test_reflect_map_matches_kornia():
    kornia = pytest.importorskip("kornia", reason="kornia is not installed")
    x, y = pair()
    want = kornia.metrics.ssim(x, y, 11, max_val=1.0, eps=0.0, padding="same")
    got = fg.ssim_map(x, y, padding="reflect")
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    want = kornia.metrics.ssim(x, y, 11, max_val=1.0, eps=0.0, padding="valid")
    torch.testing.assert_close(fg.ssim_map(x, y), want, rtol=0, atol=ATOL)
