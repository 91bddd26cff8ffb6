"""Per-image reconstruction metrics, over the full image and over the occluded region only.

``image_metrics(pred, target, mask)`` returns, for every image of the batch, float64 tensors (N,):

- ``ssim``: the mean SSIM map (``fg.ssim``: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03,
  "valid" padding, which is scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1)``, averaged over channels).
- ``ms_ssim``: multi-scale SSIM (``fg.ms_ssim``) with the standard 5 scales when the image side is
  at least 161 px; smaller images use the first k scales that fit (side >= 10 * 2^(k-1) + 1) with
  the first k standard weights rescaled to sum 1. ``ms_ssim_scales(size)`` says how many: compare
  MS-SSIM values only between runs at the same image size.
- ``psnr``: 10 log10(1 / MSE), MSE over all pixels and channels; capped at 100 dB
  (``PSNR_CAP_DB``) so identical images give a finite number that a mean and JSON can hold.
- ``l1``: mean absolute error.

and with a mask (1 = occluded; (N, 1, H, W)), the same restricted to the occluded region:

- ``masked_ssim``: the mean of the SSIM map over the map pixels whose window centre is occluded
  (``fg.ssim(mask=...)``; the map is 5 px smaller on each side, so occluded pixels within 5 px of
  the border do not count, as for the full-image SSIM).
- ``masked_psnr``: PSNR of the MSE over the occluded pixels (all channels).
- ``masked_l1``: mean absolute error over the occluded pixels.
- ``mask_area``: the occluded fraction of the image.

An image whose mask is empty (nothing occluded; for ``masked_ssim``: nothing occluded at least
5 px from the border) has NaN masked metrics; ``nanmean`` leaves it out of the masked means, and
summaries count how many images the masked means are over.
"""

from __future__ import annotations

import math

import torch

import fastgan as fg
from fastgan import reference

PSNR_CAP_DB = 100.0
WINDOW = 11
FULL_KEYS = ("ssim", "ms_ssim", "psnr", "l1")
MASKED_KEYS = ("masked_ssim", "masked_psnr", "masked_l1")


def ms_ssim_scales(size: int, window_size: int = WINDOW) -> int:
    """How many MS-SSIM scales fit in an image whose smaller side is ``size`` (1 to 5)."""
    k = 5
    while k > 1 and size < reference.ms_ssim_min_size(window_size, k):
        k -= 1
    return k


def _ms_ssim_weights(k: int) -> tuple[float, ...]:
    w = reference.MS_SSIM_WEIGHTS
    if k == len(w):
        return w  # as published (they sum to 1.0001)
    return tuple(v / sum(w[:k]) for v in w[:k])


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    floor = 10 ** (-PSNR_CAP_DB / 10)  # data range 1
    return 10 * torch.log10(1 / mse.clamp_min(floor))


def check_batch(pred, target, mask=None) -> None:
    """pred, target: float (N, 3, H, W) in [0, 1] of one shape; mask: None or (N, 1, H, W) 0/1."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != 4:
            raise ValueError(f"image_metrics: {name} must be a float (N, C, H, W) tensor, got "
                             f"{type(t).__name__ if not isinstance(t, torch.Tensor) else (t.dtype, tuple(t.shape))}")
    if pred.shape != target.shape:
        raise ValueError(f"image_metrics: pred and target must have one shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if mask is not None and (mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != pred.shape[0]
                             or mask.shape[2:] != pred.shape[2:]):
        raise ValueError(f"image_metrics: mask must be (N, 1, H, W) = {(pred.shape[0], 1, *pred.shape[2:])}, "
                         f"got {tuple(mask.shape)}")


@torch.no_grad()
def image_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict:
    """Per-image metrics {name: float64 (N,)} (see the module docstring); data range 1."""
    check_batch(pred, target, mask)
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32  # half inputs: float32
    x, y = pred.to(dtype), target.to(dtype)
    out = {}
    out["ssim"] = fg.ssim(x, y, reduction="none")
    k = ms_ssim_scales(min(x.shape[2:]))
    out["ms_ssim"] = fg.ms_ssim(x, y, weights=_ms_ssim_weights(k), reduction="none")
    out["psnr"] = _psnr_from_mse(fg.masked_mse(x, y, reduction="none"))
    out["l1"] = fg.masked_l1(x, y, reduction="none")
    if mask is not None:
        m = (mask > 0.5).to(x.dtype)
        r = WINDOW // 2
        area = m.mean((1, 2, 3))
        inner = m[..., r:-r, r:-r].sum((1, 2, 3))  # the map pixels masked_ssim averages over
        nan = torch.tensor(math.nan, dtype=torch.float64, device=x.device)
        out["masked_ssim"] = torch.where(inner > 0, fg.ssim(x, y, mask=m, reduction="none").double(), nan)
        has = area > 0
        out["masked_psnr"] = torch.where(has, _psnr_from_mse(fg.masked_mse(x, y, m, reduction="none")).double(), nan)
        out["masked_l1"] = torch.where(has, fg.masked_l1(x, y, m, reduction="none").double(), nan)
        out["mask_area"] = area
    return {name: v.double().cpu() for name, v in out.items()}
