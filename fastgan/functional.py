"""Public functional losses. Each validates its arguments once, here, and then runs
the op on the selected backend (see ``fastgan.backend``)."""

from __future__ import annotations

import torch

from fastgan import _checks, backends, ops
from fastgan.ops.masked_loss import KIND_CODES

__all__ = ["masked_l1", "masked_mse", "masked_charbonnier", "cosine_similarity_loss",
           "self_regularization_loss"]


def _cpu_kernels_run(x: torch.Tensor) -> bool:
    return backends.resolve(x.device.type, has_triton=True) == "cpu"


def _masked(op: str, x, y, mask, kind: str, eps: float, reduction: str) -> torch.Tensor:
    _checks.check_images(op, x, y)
    mask = _checks.check_mask(op, mask, x, kernel_checks_range=_cpu_kernels_run(x))
    code = _checks.reduction_code(op, reduction)
    loss = _checks.call_kernel(op, ops.masked_loss, x, y, mask, KIND_CODES[kind], eps, code)
    _checks.check_finite_result(op, loss, x=x, y=y, mask=mask)
    return loss


def masked_l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
              reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error weighted by ``mask``: sum(w |x - y|) / sum(w).

    x, y: (N, C, H, W) float16/bfloat16/float32/float64 tensors of one shape.
    mask: optional weights in [0, 1] (bool allowed), (N, 1, H, W) or (N, C, H, W),
    broadcast over channels; it is a constant (no gradient flows into it). Where all
    weights are 0 the loss is 0 with zero gradients.
    reduction: "mean" (over the whole batch), "sum" (sum(w |x - y|)), or "none"
    (the masked mean of each image, shape (N,)).
    """
    return _masked("masked_l1", x, y, mask, "l1", 0.0, reduction)


def masked_mse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
               reduction: str = "mean") -> torch.Tensor:
    """Mean squared error weighted by ``mask``: sum(w (x - y)^2) / sum(w).
    Arguments as :func:`masked_l1`."""
    return _masked("masked_mse", x, y, mask, "mse", 0.0, reduction)


def masked_charbonnier(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
                       eps: float = 1e-3, reduction: str = "mean") -> torch.Tensor:
    """Charbonnier (smooth L1) loss sqrt((x - y)^2 + eps^2) weighted by ``mask``.
    Arguments as :func:`masked_l1`; ``eps`` > 0."""
    eps = _checks.check_positive("masked_charbonnier", "eps", eps)
    return _masked("masked_charbonnier", x, y, mask, "charbonnier", eps, reduction)


def cosine_similarity_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
                           reduction: str = "sum", dim: int | None = None,
                           eps: float = 1e-8) -> torch.Tensor:
    """1 - cos(w*x, w*y), where cos(a, b) = a.b / max(|a| |b|, eps).

    dim=None (default): one cosine per image over its flattened (C, H, W) vector, as in
    the face-mask-removal paper; reduction "sum" (the paper's best, the default) or
    "mean" over the batch, or "none" for the N per-image losses.
    dim=1: one cosine per pixel over the channels (``1 - F.cosine_similarity(x, y)``);
    "sum"/"mean" over all N*H*W pixels, "none" for the per-image mean over pixels.
    mask: optional weights as in :func:`masked_l1`; both vectors are multiplied by it.
    """
    op = "cosine_similarity_loss"
    _checks.check_images(op, x, y)
    mask = _checks.check_mask(op, mask, x, kernel_checks_range=_cpu_kernels_run(x))
    code = _checks.reduction_code(op, reduction)
    if dim not in (None, 1):
        raise ValueError(f"{op}: dim must be None (per image) or 1 (per pixel), got {dim!r}")
    eps = _checks.check_positive(op, "eps", eps)
    loss = _checks.call_kernel(op, ops.cosine_loss, x, y, mask, 0 if dim is None else 1, eps, code)
    _checks.check_finite_result(op, loss, x=x, y=y, mask=mask)
    return loss


def self_regularization_loss(refined: torch.Tensor, synthetic: torch.Tensor) -> torch.Tensor:
    """SimGAN self-regularisation: L1 between the refined and the synthetic image, the
    per-channel mean over pixels summed over channels and divided by the channel count
    (equal to the mean of |refined - synthetic| over all elements)."""
    op = "self_regularization_loss"
    _checks.check_images(op, refined, synthetic, names=("refined", "synthetic"))
    loss = ops.masked_loss(refined, synthetic, None, KIND_CODES["l1"], 0.0, 1)
    _checks.check_finite_result(op, loss, refined=refined, synthetic=synthetic)
    return loss
