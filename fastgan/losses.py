"""nn.Module forms of the fastgan losses (drop-in for training code)."""

from __future__ import annotations

import torch
from torch import nn

from fastgan import _checks, functional as F

__all__ = ["MaskedL1Loss", "MaskedMSELoss", "MaskedCharbonnierLoss", "CosineSimilarityLoss",
           "SelfRegularizationLoss"]


class _MaskedLoss(nn.Module):
    _fn = staticmethod(F.masked_l1)

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _checks.reduction_code(type(self).__name__, reduction)
        self.reduction = reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._fn(x, y, mask, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MaskedL1Loss(_MaskedLoss):
    """``fastgan.masked_l1`` as a module: ``loss = MaskedL1Loss()(x, y, mask)``."""

    _fn = staticmethod(F.masked_l1)


class MaskedMSELoss(_MaskedLoss):
    """``fastgan.masked_mse`` as a module."""

    _fn = staticmethod(F.masked_mse)


class MaskedCharbonnierLoss(_MaskedLoss):
    """``fastgan.masked_charbonnier`` as a module."""

    def __init__(self, eps: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.eps = _checks.check_positive(type(self).__name__, "eps", eps)

    def forward(self, x, y, mask=None):
        return F.masked_charbonnier(x, y, mask, eps=self.eps, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"


class CosineSimilarityLoss(nn.Module):
    """``fastgan.cosine_similarity_loss`` as a module (default: per image, summed)."""

    def __init__(self, reduction: str = "sum", dim: int | None = None, eps: float = 1e-8) -> None:
        super().__init__()
        name = type(self).__name__
        _checks.reduction_code(name, reduction)
        if dim not in (None, 1):
            raise ValueError(f"{name}: dim must be None (per image) or 1 (per pixel), got {dim!r}")
        self.reduction, self.dim = reduction, dim
        self.eps = _checks.check_positive(name, "eps", eps)

    def forward(self, x, y, mask=None):
        return F.cosine_similarity_loss(x, y, mask, reduction=self.reduction, dim=self.dim,
                                        eps=self.eps)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, dim={self.dim}, eps={self.eps}"


class SelfRegularizationLoss(nn.Module):
    """SimGAN's self-regularisation term, scaled by ``weight`` (the paper's lambda)."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"{type(self).__name__}: weight must be a number >= 0, got {weight!r}")
        self.weight = float(weight)

    def forward(self, refined, synthetic):
        return self.weight * F.self_regularization_loss(refined, synthetic)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
