"""Per-image metrics (fastgan.metrics.image): scikit-image agreement, masked semantics, NaN rules."""

import math

import numpy as np
import pytest
import torch

import fastgan as fg
from fastgan.metrics.image import PSNR_CAP_DB, image_metrics, ms_ssim_scales


def pair(n=3, size=48, noise=0.08, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.nn.functional.avg_pool2d(torch.rand(n, 3, size + 3, size + 3, generator=g), 4, 1)  # smooth
    pred = (target + noise * torch.randn(target.shape, generator=g)).clamp(0, 1)
    return pred.double(), target.double()


def test_ssim_and_psnr_equal_scikit_image():
    skimage_metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is a test dependency (make test)")
    pred, target = pair()
    got = image_metrics(pred, target)
    for i in range(len(pred)):
        x, y = pred[i].numpy(), target[i].numpy()
        ssim = skimage_metrics.structural_similarity(x, y, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                                     sigma=1.5, use_sample_covariance=False)
        psnr = skimage_metrics.peak_signal_noise_ratio(y, x, data_range=1.0)
        assert float(got["ssim"][i]) == pytest.approx(ssim, abs=1e-5)
        assert float(got["psnr"][i]) == pytest.approx(psnr, abs=1e-4)
        assert float(got["l1"][i]) == pytest.approx(np.abs(x - y).mean(), abs=1e-6)


def test_a_mask_covering_everything_gives_the_full_metrics():
    pred, target = pair()
    got = image_metrics(pred, target, torch.ones(3, 1, 48, 48, dtype=torch.float64))
    for name in ("ssim", "psnr", "l1"):
        torch.testing.assert_close(got[f"masked_{name}"], got[name], rtol=1e-6, atol=1e-6)
    assert torch.all(got["mask_area"] == 1)


def test_masked_psnr_by_hand():
    target = torch.full((2, 3, 32, 32), 0.5, dtype=torch.float64)
    pred = target.clone()
    mask = torch.zeros(2, 1, 32, 32, dtype=torch.float64)
    mask[:, :, 8:16, 8:24] = 1
    pred[0, :, 8:16, 8:24] += 0.1   # error 0.1 on the occluded pixels of image 0
    pred[1, 0, 8:16, 8:24] += 0.3   # error 0.3 on one channel of image 1
    pred[:, :, 0:4, :] = 0.0        # errors outside the mask change only the full-image metrics
    got = image_metrics(pred, target, mask)
    assert float(got["masked_psnr"][0]) == pytest.approx(10 * math.log10(1 / 0.1 ** 2), abs=1e-6)
    assert float(got["masked_psnr"][1]) == pytest.approx(10 * math.log10(1 / (0.3 ** 2 / 3)), abs=1e-6)
    assert float(got["masked_l1"][1]) == pytest.approx(0.1, abs=1e-9)
    assert float(got["mask_area"][0]) == pytest.approx(128 / 1024)
    assert float(got["psnr"][0]) < float(got["masked_psnr"][0])


def test_masked_ssim_is_the_mean_of_the_ssim_map_over_the_occluded_window_centres():
    pred, target = pair(n=2, size=40, seed=3)
    mask = torch.zeros(2, 1, 40, 40, dtype=torch.float64)
    mask[0, :, 10:30, 5:20] = 1
    mask[1, :, 0:12, 0:40] = 1
    smap = fg.ssim_map(pred, target).mean(1)          # (N, 30, 30), "valid": centres 5..34
    inner = mask[:, 0, 5:-5, 5:-5]
    expected = (smap * inner).sum((1, 2)) / inner.sum((1, 2))
    torch.testing.assert_close(image_metrics(pred, target, mask)["masked_ssim"], expected, rtol=1e-6, atol=1e-7)


def test_empty_masks_give_nan_masked_metrics():
    pred, target = pair(n=2, size=32)
    mask = torch.zeros(2, 1, 32, 32, dtype=torch.float64)
    mask[1, :, 0:3, :] = 1  # occluded only within 5 px of the border: no SSIM window centre inside
    got = image_metrics(pred, target, mask)
    assert all(math.isnan(float(got[k][0])) for k in ("masked_ssim", "masked_psnr", "masked_l1"))
    assert math.isnan(float(got["masked_ssim"][1]))
    assert math.isfinite(float(got["masked_psnr"][1])) and math.isfinite(float(got["masked_l1"][1]))


def test_identical_images_are_capped_not_infinite():
    _, target = pair(n=1)
    assert float(image_metrics(target, target)["psnr"][0]) == PSNR_CAP_DB


def test_ms_ssim_scales_fit_the_image():
    assert [ms_ssim_scales(s) for s in (161, 160, 81, 80, 64, 21, 12)] == [5, 4, 4, 3, 3, 2, 1]
    pred, target = pair(n=2, size=161, seed=5)
    got = image_metrics(pred, target)["ms_ssim"]
    torch.testing.assert_close(got, fg.ms_ssim(pred, target, reduction="none"), rtol=1e-6, atol=1e-7)


def test_bad_shapes_are_refused():
    pred, target = pair(n=2, size=32)
    with pytest.raises(ValueError, match="one shape"):
        image_metrics(pred, target[:, :, :16])
    with pytest.raises(ValueError, match="mask must be"):
        image_metrics(pred, target, torch.ones(2, 3, 32, 32))
