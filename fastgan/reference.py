"""Plain-PyTorch definitions of every fastgan op: the specification, the test oracle
and the fallback when no compiled kernel can run.

Conventions (see DESIGN.md): images are (N, C, H, W); a mask holds weights in [0, 1]
of shape (N, 1, H, W) or (N, C, H, W) broadcast over channels; a masked mean is
sum(w * e) / sum(w) over the broadcast elements, and 0 (with zero gradients) when the
weights sum to 0. ``reduction="none"`` means one value per image. Half and bfloat16
inputs are computed in float32 and the result is returned in the input dtype.
"""

from __future__ import annotations

import torch

MASKED_LOSS_KINDS = ("l1", "mse", "charbonnier")


def _opmath(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.float64 else t.float()


def _safe_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 0 where den == 0 with gradients 0 rather than NaN."""
    positive = den > 0
    return torch.where(positive, num / torch.where(positive, den, torch.ones_like(den)),
                       torch.zeros_like(num))


def masked_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
                kind: str = "l1", eps: float = 1e-3, reduction: str = "mean") -> torch.Tensor:
    """Masked pointwise loss: e = |d| (l1), d^2 (mse) or sqrt(d^2 + eps^2) (charbonnier),
    d = x - y, weighted by the mask.

    reduction: "mean" = sum(w e) / sum(w) over the whole batch, "sum" = sum(w e),
    "none" = the masked mean of each image, shape (N,).
    """
    d = _opmath(x) - _opmath(y)
    if kind == "l1":
        e = d.abs()
    elif kind == "mse":
        e = d * d
    elif kind == "charbonnier":
        e = torch.sqrt(d * d + eps * eps)
    else:
        raise ValueError(f"kind must be one of {MASKED_LOSS_KINDS}, got {kind!r}")
    if mask is None:
        num = e.sum(dim=(1, 2, 3))
        den = torch.full_like(num, float(e[0].numel()))
    else:
        w = _opmath(mask).expand_as(e)
        num = (w * e).sum(dim=(1, 2, 3))
        den = w.sum(dim=(1, 2, 3))
    if reduction == "none":
        out = _safe_ratio(num, den)
    elif reduction == "sum":
        out = num.sum()
    else:
        out = _safe_ratio(num.sum(), den.sum())
    return out.to(x.dtype)


def masked_l1(x, y, mask=None, *, reduction="mean"):
    return masked_loss(x, y, mask, kind="l1", reduction=reduction)


def masked_mse(x, y, mask=None, *, reduction="mean"):
    return masked_loss(x, y, mask, kind="mse", reduction=reduction)


def masked_charbonnier(x, y, mask=None, *, eps=1e-3, reduction="mean"):
    return masked_loss(x, y, mask, kind="charbonnier", eps=eps, reduction=reduction)


def cosine_similarity_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
                           reduction: str = "sum", dim: int | None = None,
                           eps: float = 1e-8) -> torch.Tensor:
    """1 - cos(w*x, w*y) with cos = a.b / max(|a| |b|, eps).

    dim=None: one cosine per image over the flattened (C, H, W) vector; "sum" / "mean"
    reduce over the batch, "none" gives the N per-image losses.
    dim=1: one cosine per pixel over the channels; "sum" / "mean" reduce over all
    N*H*W pixels, "none" gives the per-image mean over pixels, shape (N,).
    """
    a, b = _opmath(x), _opmath(y)
    if mask is not None:
        w = _opmath(mask)
        a, b = w * a, w * b
    dims = (1, 2, 3) if dim is None else (1,)
    dot = (a * b).sum(dim=dims)
    # max(sqrt(p), eps) == sqrt(max(p, eps^2)); this form keeps sqrt's gradient finite at 0.
    norm = torch.sqrt(torch.clamp_min((a * a).sum(dim=dims) * (b * b).sum(dim=dims), eps * eps))
    loss = 1 - dot / norm
    if reduction == "none":
        out = loss if dim is None else loss.mean(dim=(1, 2))
    elif reduction == "sum":
        out = loss.sum()
    else:
        out = loss.mean()
    return out.to(x.dtype)


def self_regularization_loss(refined: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
    """SimGAN self-regularisation: the per-channel mean absolute difference between the
    refined and the synthetic image, summed over channels and divided by the channel
    count, i.e. the mean of |refined - synthetic| over all N*C*H*W elements."""
    return masked_loss(refined, synthetic, None, kind="l1", reduction="mean")


# ---- InstanceNorm + activation ------------------------------------------------------

NORM_ACTIVATIONS = ("leaky_relu", "identity")


def instance_norm_act(x: torch.Tensor, weight: torch.Tensor | None = None,
                      bias: torch.Tensor | None = None, *, eps: float = 1e-5,
                      negative_slope: float = 0.2, activation: str = "leaky_relu") -> torch.Tensor:
    """act(weight_c * (x - mean) / sqrt(var + eps) + bias_c), with the mean and the biased
    variance of each (n, c) plane over H x W: ``nn.InstanceNorm2d(C, affine=...)`` followed by
    ``nn.LeakyReLU(negative_slope)`` (slope 0 is ReLU; activation "identity": none).
    Statistics and arithmetic in float32 (float64 for float64 x); the result has x's dtype."""
    if activation not in NORM_ACTIVATIONS:
        raise ValueError(f"activation must be one of {NORM_ACTIVATIONS}, got {activation!r}")
    xf = _opmath(x)
    mean = xf.mean(dim=(2, 3), keepdim=True)
    centred = xf - mean
    var = (centred * centred).mean(dim=(2, 3), keepdim=True)
    y = centred * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * _opmath(weight).view(1, -1, 1, 1)
    if bias is not None:
        y = y + _opmath(bias).view(1, -1, 1, 1)
    if activation == "leaky_relu":
        y = torch.nn.functional.leaky_relu(y, negative_slope)
    return y.to(x.dtype)
