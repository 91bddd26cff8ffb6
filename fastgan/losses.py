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


# ---------------------------------------------------------------------------------------
# SSIM family (fastgan/ssim.py): loss = 1 - SSIM, 1 - MS-SSIM, and the SSIM + L1 mix.

from fastgan.ssim import check_options as _check_ssim_options  # noqa: E402
from fastgan.ssim import ms_ssim as _ms_ssim  # noqa: E402
from fastgan.ssim import ssim_l1_loss as _ssim_l1_loss  # noqa: E402
from fastgan.ssim import ssim_loss as _ssim_loss  # noqa: E402

__all__ += ["SSIMLoss", "MSSSIMLoss", "SSIML1Loss"]


class _SSIMOptions(nn.Module):
    def __init__(self, data_range, window_size, sigma, k1, k2, padding, reduction) -> None:
        super().__init__()
        name = type(self).__name__
        _check_ssim_options(name, data_range, window_size, sigma, k1, k2, padding)
        _checks.reduction_code(name, reduction)
        self.options = dict(data_range=float(data_range), window_size=window_size,
                            sigma=float(sigma), k1=float(k1), k2=float(k2), padding=padding)
        self.reduction = reduction

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{opts}, reduction={self.reduction!r}"


class SSIMLoss(_SSIMOptions):
    """1 - SSIM (``fastgan.ssim``) as a module: ``SSIMLoss(data_range=1.0)(x, y, mask)``.
    "mean" / "none" give 1 - SSIM of the batch / of each image, "sum" the sum of the
    weighted 1 - SSIM map; ``nonnegative`` ReLUs each (image, channel) SSIM first."""

    def __init__(self, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
                 reduction: str = "mean", nonnegative: bool = False) -> None:
        super().__init__(data_range, window_size, sigma, k1, k2, padding, reduction)
        self.nonnegative = bool(nonnegative)

    def forward(self, x: torch.Tensor, y: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        return _ssim_loss(x, y, mask=mask, reduction=self.reduction, nonnegative=self.nonnegative,
                          **self.options)


class MSSSIMLoss(_SSIMOptions):
    """1 - MS-SSIM (``fastgan.ms_ssim``) as a module; "sum" sums 1 - MS-SSIM over images."""

    def __init__(self, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, weights=None, padding: str = "valid",
                 reduction: str = "mean") -> None:
        super().__init__(data_range, window_size, sigma, k1, k2, padding, reduction)
        self.weights = None if weights is None else tuple(float(w) for w in weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        per_image = 1 - _ms_ssim(x, y, weights=self.weights, reduction="none", **self.options)
        if self.reduction == "none":
            return per_image
        return per_image.sum() if self.reduction == "sum" else per_image.mean()


class SSIML1Loss(_SSIMOptions):
    """The SSIM + L1 mix of Zhao et al. (``fastgan.ssim_l1_loss``) as a module:
    alpha (1 - SSIM) + (1 - alpha) Gaussian-weighted L1 / data_range, optionally masked."""

    def __init__(self, alpha: float = 0.84, data_range: float = 1.0, window_size: int = 11,
                 sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
                 reduction: str = "mean") -> None:
        super().__init__(data_range, window_size, sigma, k1, k2, padding, reduction)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"SSIML1Loss: alpha must be a number in [0, 1], got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor, y: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        return _ssim_l1_loss(x, y, alpha=self.alpha, mask=mask, reduction=self.reduction,
                             **self.options)
