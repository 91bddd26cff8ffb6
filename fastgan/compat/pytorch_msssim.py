"""pytorch-msssim's API (``ssim``, ``ms_ssim``, ``SSIM``, ``MS_SSIM``) on fastgan's kernels.

Same arguments, defaults and results as pytorch-msssim 1.0 ("valid" Gaussian filtering,
``data_range=255`` by default, ``size_average=True`` for the batch mean and ``False`` for
one value per image), so that changing the import line is all a user does:

    from fastgan.compat.pytorch_msssim import ssim, ms_ssim, SSIM, MS_SSIM

Differences: inputs must be 4-D (N, C, H, W) images at least ``win_size`` on each side
(pytorch-msssim also takes 5-D volumes and skips smoothing along too-short sides with a
warning); a custom ``win`` must be a normalised 1-D Gaussian (its sigma is read from it),
since the kernels compute the window themselves; errors are ValueError/TypeError.
"""

from __future__ import annotations

import math

import torch

from fastgan.ssim import ms_ssim as _ms_ssim
from fastgan.ssim import ssim as _ssim

__all__ = ["ssim", "ms_ssim", "SSIM", "MS_SSIM"]


def _window_args(op: str, win, win_size: int, win_sigma: float) -> tuple[int, float]:
    """(window size, sigma) from pytorch-msssim's win / win_size / win_sigma arguments."""
    if win is None:
        return win_size, win_sigma
    if not isinstance(win, torch.Tensor):
        raise TypeError(f"{op}: win must be a tensor (a 1-D Gaussian window), got {type(win).__name__}")
    g = win.detach().reshape(-1, win.shape[-1])[0].to(torch.float64).cpu()
    size = g.numel()
    if size % 2 == 0 or size < 3:
        raise ValueError(f"{op}: Window size should be odd (and at least 3), got {size}")
    c = size // 2
    ratio = float(g[c + 1] / g[c]) if g[c] > 0 else 0.0
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"{op}: win must be a normalised 1-D Gaussian window")
    sigma = math.sqrt(-1.0 / (2.0 * math.log(ratio)))
    d = torch.arange(size, dtype=torch.float64) - c
    expected = torch.exp(-(d * d) / (2 * sigma * sigma))
    if not torch.allclose(g, expected / expected.sum(), rtol=1e-4, atol=1e-6):
        raise ValueError(f"{op}: win must be a normalised 1-D Gaussian window; fastgan computes "
                         "the window itself and supports Gaussian windows only")
    return size, sigma


def _check_odd(op: str, win_size) -> None:
    if isinstance(win_size, int) and not isinstance(win_size, bool) and win_size % 2 == 0:
        raise ValueError(f"{op}: Window size should be odd, got win_size={win_size}")


def ssim(X: torch.Tensor, Y: torch.Tensor, data_range: float = 255, size_average: bool = True,
         win_size: int = 11, win_sigma: float = 1.5, win: torch.Tensor | None = None,
         K=(0.01, 0.03), nonnegative_ssim: bool = False) -> torch.Tensor:
    """pytorch_msssim.ssim: the batch mean (size_average) or the per-image SSIM."""
    _check_odd("ssim", win_size)
    size, sigma = _window_args("ssim", win, win_size, win_sigma)
    k1, k2 = K
    return _ssim(X, Y, data_range=data_range, window_size=size, sigma=sigma, k1=k1, k2=k2,
                 reduction="mean" if size_average else "none", nonnegative=nonnegative_ssim)


def ms_ssim(X: torch.Tensor, Y: torch.Tensor, data_range: float = 255, size_average: bool = True,
            win_size: int = 11, win_sigma: float = 1.5, win: torch.Tensor | None = None,
            weights=None, K=(0.01, 0.03)) -> torch.Tensor:
    """pytorch_msssim.ms_ssim: the batch mean (size_average) or the per-image MS-SSIM."""
    _check_odd("ms_ssim", win_size)
    size, sigma = _window_args("ms_ssim", win, win_size, win_sigma)
    k1, k2 = K
    return _ms_ssim(X, Y, data_range=data_range, window_size=size, sigma=sigma, k1=k1, k2=k2,
                    weights=weights, reduction="mean" if size_average else "none")


class SSIM(torch.nn.Module):
    """pytorch_msssim.SSIM (``channel`` and ``spatial_dims`` are accepted for
    compatibility; only 2-D images are supported)."""

    def __init__(self, data_range: float = 255, size_average: bool = True, win_size: int = 11,
                 win_sigma: float = 1.5, channel: int = 3, spatial_dims: int = 2, K=(0.01, 0.03),
                 nonnegative_ssim: bool = False) -> None:
        super().__init__()
        _check_odd("SSIM", win_size)
        if spatial_dims != 2:
            raise ValueError(f"SSIM: only spatial_dims=2 is supported, got {spatial_dims}")
        self.win_size, self.win_sigma, self.channel = win_size, win_sigma, channel
        self.size_average, self.data_range = size_average, data_range
        self.K, self.nonnegative_ssim = K, nonnegative_ssim

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return ssim(X, Y, data_range=self.data_range, size_average=self.size_average,
                    win_size=self.win_size, win_sigma=self.win_sigma, K=self.K,
                    nonnegative_ssim=self.nonnegative_ssim)


class MS_SSIM(torch.nn.Module):
    """pytorch_msssim.MS_SSIM (``channel`` and ``spatial_dims`` as in :class:`SSIM`)."""

    def __init__(self, data_range: float = 255, size_average: bool = True, win_size: int = 11,
                 win_sigma: float = 1.5, channel: int = 3, spatial_dims: int = 2, weights=None,
                 K=(0.01, 0.03)) -> None:
        super().__init__()
        _check_odd("MS_SSIM", win_size)
        if spatial_dims != 2:
            raise ValueError(f"MS_SSIM: only spatial_dims=2 is supported, got {spatial_dims}")
        self.win_size, self.win_sigma, self.channel = win_size, win_sigma, channel
        self.size_average, self.data_range = size_average, data_range
        self.weights, self.K = weights, K

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        return ms_ssim(X, Y, data_range=self.data_range, size_average=self.size_average,
                       win_size=self.win_size, win_sigma=self.win_sigma, weights=self.weights,
                       K=self.K)
