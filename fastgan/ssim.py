"""SSIM, MS-SSIM, the SSIM + L1 mix and PSNR: public functions.

Each validates its arguments once, here, and runs the fused op on the selected backend
(see ``fastgan.backend``). Conventions shared by all of them:

- Images are (N, C, H, W); volumes and clips (N, C, D, H, W) work everywhere too: the
  same window along depth (a separable 3-D Gaussian, pytorch-msssim's 3-D SSIM), masks
  and maps 5-D likewise, every padding applied on all three axes.
- Gaussian window of ``window_size`` taps (odd, 3 to 15) and standard deviation
  ``sigma``, normalised to sum 1; C1 = (k1 data_range)^2, C2 = (k2 data_range)^2.
  ``data_range`` is explicit (1.0 for images in [0, 1], 255 for [0, 255]).
- ``padding="valid"`` (default): no padding; the map is (H - 2r, W - 2r), r =
  window_size // 2. Equals scikit-image ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=...)`` and pytorch-msssim.
  ``"same"``: zero padding, map (H, W), as fused-ssim. ``"reflect"``: reflect padding
  (the edge pixel not repeated, torch's "reflect"), map (H, W), as kornia and
  torchmetrics >= 1.4.2. Images must be at least window_size in each side (volumes in
  depth too, except for :func:`ms_ssim`, which follows pytorch-msssim there).
- ``mask``: weights in [0, 1] (bool allowed), (N, 1, H, W) or (N, C, H, W) at the image
  size ((N, 1 or C, D, H, W) for volumes), broadcast over channels, applied to the map:
  with "valid" padding the weight of a map pixel is the mask at the centre of its window
  (the mask cropped by r on each side). A masked mean is sum(w v) / sum(w); all-zero
  weights give 0 and zero gradients.
- Computation in float32 (float64 for float64 inputs); the result has x's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import math
import warnings

import numpy as np
import torch

from fastgan import _checks, ops, reference
from fastgan.ops.masked_loss import KIND_CODES
from fastgan.ops.ssim import PADDING_CODES, STAT_CODES

__all__ = ["ssim", "ssim_map", "ssim_loss", "ms_ssim", "ssim_l1_loss", "psnr", "check_options"]


def check_options(op: str, data_range=1.0, window_size=11, sigma=1.5, k1=0.01, k2=0.03,
                  padding="valid") -> dict:
    """Validate the options shared by the SSIM functions and modules; returns them as the
    kernels take them (padding as its integer code)."""
    data_range = _checks.check_positive(op, "data_range", data_range)
    if isinstance(window_size, bool) or not isinstance(window_size, int):
        raise TypeError(f"{op}: window_size must be an int, got {type(window_size).__name__}")
    if window_size % 2 == 0 or not 3 <= window_size <= 15:
        raise ValueError(f"{op}: window_size must be odd, from 3 to 15, got {window_size}")
    sigma = _checks.check_positive(op, "sigma", sigma)
    k1 = _checks.check_positive(op, "k1", k1)
    k2 = _checks.check_positive(op, "k2", k2)
    if padding not in PADDING_CODES:
        raise ValueError(f"{op}: padding must be 'valid', 'same' or 'reflect', got {padding!r}")
    return dict(window_size=window_size, sigma=sigma, k1=k1, k2=k2, data_range=data_range,
                padding=PADDING_CODES[padding])


def _check_options(op: str, x, y, data_range, window_size, sigma, k1, k2, padding,
                   short_depth_ok: bool = False) -> dict:
    """The images and the options; returns the kernel arguments. short_depth_ok: a volume
    may be shallower than the window (MS-SSIM then skips smoothing along depth)."""
    _checks.check_images(op, x, y, ranks=(4, 5))
    opts = check_options(op, data_range, window_size, sigma, k1, k2, padding)
    h, w = x.shape[-2:]
    if h < window_size or w < window_size:
        raise ValueError(
            f"{op}: images of {h}x{w} are smaller than the {window_size}x{window_size} window; "
            f"use images of at least {window_size}x{window_size} or a smaller window_size")
    if x.dim() == 5 and x.shape[2] < window_size and not short_depth_ok:
        raise ValueError(
            f"{op}: x has depth {x.shape[2]} (shape {tuple(x.shape)}), smaller than the window "
            f"({window_size}); use a depth of at least {window_size} or a smaller window_size")
    return opts


def _sums(x, y, mask, opts: dict, stat: str, alpha: float = 0.0, grad_scale: float = 1.0):
    return ops.ssim_sums(x, y, mask, opts["window_size"], opts["sigma"], opts["k1"], opts["k2"],
                         opts["data_range"], opts["padding"], STAT_CODES[stat], alpha, grad_scale)


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, 1), 0)


def _grad_hint(x: torch.Tensor, mask, opts: dict, reduction: int, sign: float) -> float:
    """The upstream gradient that the per-plane sums get when the result is the loss
    itself (or one term of a sum of losses): sign / count for an unmasked mean, sign for
    a sum. The CPU kernels pre-scale their fused gradient by it (see fastgan/ops/ssim.py)."""
    if reduction == 2:
        return sign
    if reduction == 0 or mask is not None or torch.compiler.is_compiling():
        return 1.0  # (traced backward passes always rescale: no hint needed)
    shrink = 2 * (opts["window_size"] // 2) if opts["padding"] == 0 else 0
    count = x.shape[0] * x.shape[1] * math.prod(s - shrink for s in x.shape[2:])
    dtype = np.float64 if x.dtype == torch.float64 else np.float32
    return sign * float(dtype(1.0) / dtype(count))  # rounded as autograd rounds 1 / count


def _reduce(sums, weights, reduction: int, nonnegative: bool = False, loss: bool = False):
    """Per-plane sums -> the result: masked means per plane (ReLU'd when nonnegative)
    combined weighted by the planes' weight sums: "mean" over the batch, "none" per
    image, "sum" = sum of w * value; of 1 - value for a loss. Without nonnegative the sums
    are reduced directly (the same value, and a uniform gradient for the sums)."""
    if nonnegative:
        means = torch.relu(_safe_ratio(sums, weights))
        total = (1 - means if loss else means) * weights
        if reduction == 2:
            return total.sum()
        if reduction == 0:
            return _safe_ratio(total.sum(1), weights.sum(1))
        return _safe_ratio(total.sum(), weights.sum())
    if reduction == 2:
        return weights.sum() - sums.sum() if loss else sums.sum()
    num, den = (sums.sum(1), weights.sum(1)) if reduction == 0 else (sums.sum(), weights.sum())
    return _safe_ratio(den - num if loss else num, den)


def _finish(op, out, x, y, mask=None):
    out = out.to(x.dtype)
    _checks.check_finite_result(op, out, x=x, y=y, mask=mask)
    return out


def _ssim_value(op, x, y, data_range, window_size, sigma, k1, k2, padding, mask, reduction,
                nonnegative, loss):
    opts = _check_options(op, x, y, data_range, window_size, sigma, k1, k2, padding)
    mask = _checks.check_mask(op, mask, x)
    code = _checks.reduction_code(op, reduction)
    hint = 1.0 if nonnegative else _grad_hint(x, mask, opts, code, -1.0 if loss else 1.0)
    sums, weights = _sums(x, y, mask, opts, "ssim", grad_scale=hint)
    return _finish(op, _reduce(sums, weights, code, bool(nonnegative), loss), x, y, mask)


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
         mask: torch.Tensor | None = None, reduction: str = "mean",
         nonnegative: bool = False) -> torch.Tensor:
    """Structural similarity of x and y, (N, C, H, W) images or (N, C, D, H, W) volumes
    (float tensors of one shape).

    The mean of the SSIM map (masked mean with ``mask``); see the module docstring for
    the window, ``padding`` ("valid" = scikit-image / pytorch-msssim, "same" = zeros as
    fused-ssim, "reflect" = kornia / torchmetrics) and mask conventions.
    reduction: "mean" (one value for the batch), "none" (one per image, shape (N,)) or
    "sum" (the sum of the weighted map). nonnegative: ReLU on each (image, channel) mean,
    as pytorch-msssim's ``nonnegative_ssim``. Differentiable in x and y.
    """
    return _ssim_value("ssim", x, y, data_range, window_size, sigma, k1, k2, padding, mask,
                       reduction, nonnegative, loss=False)


def ssim_loss(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0,
              window_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
              padding: str = "valid", mask: torch.Tensor | None = None, reduction: str = "mean",
              nonnegative: bool = False) -> torch.Tensor:
    """1 - SSIM with the options of :func:`ssim`: "mean" and "none" give 1 - ssim(...),
    "sum" the sum of the weighted map of 1 - SSIM."""
    return _ssim_value("ssim_loss", x, y, data_range, window_size, sigma, k1, k2, padding, mask,
                       reduction, nonnegative, loss=True)


def ssim_map(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
             sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
             padding: str = "valid") -> torch.Tensor:
    """The per-pixel SSIM map, (N, C, H - 2r, W - 2r) for "valid" padding, (N, C, H, W)
    otherwise ((N, C, D - 2r, H - 2r, W - 2r) / (N, C, D, H, W) for volumes), in x's
    dtype; options as :func:`ssim` (reduce or mask it yourself).
    Differentiable in x and y."""
    op = "ssim_map"
    opts = _check_options(op, x, y, data_range, window_size, sigma, k1, k2, padding)
    out = ops.ssim_map(x, y, opts["window_size"], opts["sigma"], opts["k1"], opts["k2"],
                       opts["data_range"], opts["padding"], STAT_CODES["ssim"])
    return _finish(op, out, x, y)


def _check_weights(op: str, weights) -> tuple[float, ...]:
    if weights is None:
        return reference.MS_SSIM_WEIGHTS
    if isinstance(weights, torch.Tensor):
        weights = weights.tolist()
    if not isinstance(weights, Sequence) or len(weights) == 0 or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights):
        raise ValueError(f"{op}: weights must be a non-empty sequence of numbers >= 0, got {weights!r}")
    return tuple(float(w) for w in weights)


def _scale_sums(a, b, opts: dict, stat: str, scale: str):
    """Per-(image, channel) sums of one MS-SSIM scale. A volume shallower than the window
    is not smoothed along depth (pytorch-msssim's rule, with its warning): the sums of its
    depth slices as 2-D images, which is exactly that."""
    if a.dim() == 5 and a.shape[2] < opts["window_size"]:
        warnings.warn(f"ms_ssim: at scale {scale} the depth {a.shape[2]} (shape {tuple(a.shape)}) "
                      f"is smaller than the window ({opts['window_size']}): no smoothing along "
                      "depth there, as pytorch-msssim", UserWarning, stacklevel=3)
        n, c, d = a.shape[:3]
        sums, weights = _sums(a.reshape(n, c * d, *a.shape[3:]), b.reshape(n, c * d, *b.shape[3:]),
                              None, opts, stat)
        return sums.view(n, c, d).sum(2), weights.view(n, c, d).sum(2)
    return _sums(a, b, None, opts, stat)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
            sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, weights=None,
            padding: str = "valid", reduction: str = "mean") -> torch.Tensor:
    """Multi-scale SSIM as pytorch-msssim defines it: len(weights) scales (default 5, with
    the standard weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x average pooling
    between them (2x2x2 for volumes; odd sizes zero-padded); per (image, channel) the
    product of relu(mean cs)^w over the first scales and relu(mean ssim)^w at the last one.
    reduction: "mean" over everything, "none" per image (mean over channels), "sum" of
    the per-image values. The smaller of H and W must be at least
    (window_size - 1) * 2^(scales - 1) + 1 (161 for the defaults); a volume's depth may be
    smaller: at the scales where it is below window_size it is not smoothed, with a
    warning (pytorch-msssim's rules). Differentiable.
    """
    op = "ms_ssim"
    opts = _check_options(op, x, y, data_range, window_size, sigma, k1, k2, padding,
                          short_depth_ok=True)
    code = _checks.reduction_code(op, reduction)
    w = _check_weights(op, weights)
    smallest = reference.ms_ssim_min_size(window_size, len(w))
    if min(x.shape[-2:]) < smallest:
        raise ValueError(
            f"{op}: images of {x.shape[-2]}x{x.shape[-1]} are too small for {len(w)} scales with "
            f"a {window_size}x{window_size} window: the smaller side must be at least {smallest}")
    a, b = x, y
    if a.dtype in (torch.float16, torch.bfloat16):  # pool in float32
        a, b = a.float(), b.float()
    values = []
    for level in range(len(w)):
        last = level == len(w) - 1
        sums, weights = _scale_sums(a, b, opts, "ssim" if last else "cs", f"{level + 1} of {len(w)}")
        values.append(torch.relu(sums / weights))
        if not last:
            a, b = reference.ms_ssim_pool(a), reference.ms_ssim_pool(b)
    stacked = torch.stack(values)
    exps = torch.tensor(w, dtype=stacked.dtype, device=stacked.device).view(-1, 1, 1)
    per_image = torch.prod(stacked ** exps, dim=0).mean(1)
    out = per_image if code == 0 else (per_image.sum() if code == 2 else per_image.mean())
    return _finish(op, out, x, y)


def ssim_l1_loss(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 0.84, data_range: float = 1.0,
                 mask: torch.Tensor | None = None, window_size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
                 reduction: str = "mean") -> torch.Tensor:
    """The SSIM + L1 mix of Zhao et al. ("Loss functions for image restoration with neural
    networks"): the (masked) mean over the map of
    alpha (1 - SSIM) + (1 - alpha) G*|x - y| / data_range, where G*|x - y| is the L1 error
    weighted by the SSIM window, computed in the same pass as SSIM. alpha in [0, 1];
    other options as :func:`ssim`; "sum" is the sum of the weighted map."""
    op = "ssim_l1_loss"
    opts = _check_options(op, x, y, data_range, window_size, sigma, k1, k2, padding)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"{op}: alpha must be a number in [0, 1], got {alpha!r}")
    mask = _checks.check_mask(op, mask, x)
    code = _checks.reduction_code(op, reduction)
    hint = _grad_hint(x, mask, opts, code, 1.0)
    sums, weights = _sums(x, y, mask, opts, "mix", float(alpha), hint)
    return _finish(op, _reduce(sums, weights, code), x, y, mask)


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0,
         mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio per image, 10 log10(data_range^2 / MSE), with the
    (masked, see the module docstring) MSE of each image. reduction: "mean" (the mean of
    the images' PSNRs, as papers report it), "sum", or "none" (per image, shape (N,)).
    Identical images give inf."""
    op = "psnr"
    _checks.check_images(op, x, y)
    data_range = _checks.check_positive(op, "data_range", data_range)
    mask = _checks.check_mask(op, mask, x)
    code = _checks.reduction_code(op, reduction)
    mse = ops.masked_loss(x, y, mask, KIND_CODES["mse"], 0.0, 0)
    _checks.check_finite_result(op, mse, x=x, y=y, mask=mask)
    p = 10 * torch.log10(data_range ** 2 / mse.to(torch.float64 if x.dtype == torch.float64
                                                  else torch.float32))
    out = p if code == 0 else (p.sum() if code == 2 else p.mean())
    return out.to(x.dtype)
