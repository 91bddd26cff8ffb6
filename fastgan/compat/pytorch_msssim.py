"""pytorch-msssim's API (``ssim``, ``ms_ssim``, ``SSIM``, ``MS_SSIM``) on fastgan's kernels.

Same arguments, defaults and results as pytorch-msssim 1.0 ("valid" Gaussian filtering,
``data_range=255`` by default, ``size_average=True`` for the batch mean and ``False`` for
one value per image), so that changing the import line is all a user does:

    from fastgan.compat.pytorch_msssim import ssim, ms_ssim, SSIM, MS_SSIM

As there: 4-D images (N, C, H, W) and 5-D volumes or clips (N, C, D, H, W) (the modules'
``spatial_dims=3``), singleton spatial axes squeezed first; a volume shallower than the
window is not smoothed along depth, with a warning; ``win`` is a 1-D window of shape
(C, 1, 1, k) for images and (C, 1, 1, 1, k) for volumes, its size overriding ``win_size``.
A Gaussian ``win`` runs on the kernels (its sigma read from it); any other window runs on
fastgan.reference, which takes the window as it is. Differences: images must be at
least ``win_size`` in H and W (pytorch-msssim skips smoothing there too); errors are
ValueError/TypeError naming the argument.
"""

from __future__ import annotations

import math
import warnings

import torch

from fastgan import reference
from fastgan.ssim import ms_ssim as _fg_ms_ssim
from fastgan.ssim import ssim as _fg_ssim

__all__ = ["ssim", "ms_ssim", "SSIM", "MS_SSIM"]


def _squeezed(op: str, X, Y):
    """pytorch-msssim's input handling: same shape, singleton spatial axes squeezed, then
    4-D or 5-D."""
    for name, t in (("X", X), ("Y", Y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if X.shape != Y.shape:
        raise ValueError(f"{op}: X and Y must have the same shape, got {tuple(X.shape)} and "
                         f"{tuple(Y.shape)}")
    for d in range(X.dim() - 1, 1, -1):
        X, Y = X.squeeze(dim=d), Y.squeeze(dim=d)
    if X.dim() not in (4, 5):
        raise ValueError(f"{op}: X must be 4-D (N, C, H, W) or 5-D (N, C, D, H, W) after "
                         f"squeezing singleton axes, got shape {tuple(X.shape)}")
    return X, Y


def _gaussian_sigma(g: torch.Tensor) -> float | None:
    """The sigma of g if g is (to float32 precision) the normalised Gaussian window of its
    size that the kernels compute, else None."""
    size, c = g.numel(), g.numel() // 2
    if size > 15 or g[c] <= 0 or not 0 < float(g[c + 1] / g[c]) < 1:
        return None
    sigma = math.sqrt(-1.0 / (2.0 * math.log(float(g[c + 1] / g[c]))))
    expected = reference.gaussian_window(size, sigma)
    return sigma if torch.allclose(g, expected, rtol=1e-6, atol=1e-8) else None


def _window(op: str, win, win_size: int, win_sigma: float, X: torch.Tensor):
    """(window size, sigma, None) for the kernels, or (size, None, the 1-D window) for the
    reference, from pytorch-msssim's win / win_size / win_sigma arguments."""
    if win is None:
        if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size % 2 == 0:
            raise ValueError(f"{op}: Window size should be odd, got win_size={win_size!r}")
        return win_size, win_sigma, None
    if not isinstance(win, torch.Tensor):
        raise TypeError(f"{op}: win must be a tensor (a 1-D window), got {type(win).__name__}")
    layout = "(C, 1, 1, k)" if X.dim() == 4 else "(C, 1, 1, 1, k)"
    if win.dim() != X.dim() or any(s != 1 for s in win.shape[1:-1]):
        raise ValueError(f"{op}: win must be {X.dim()}-D {layout} for {X.dim()}-D input of shape "
                         f"{tuple(X.shape)}, got shape {tuple(win.shape)}")
    if win.shape[0] != X.shape[1]:
        raise ValueError(f"{op}: win must have one row per channel ({X.shape[1]}), got shape "
                         f"{tuple(win.shape)}")
    rows = win.detach().reshape(win.shape[0], -1).to(torch.float64).cpu()
    if not torch.equal(rows, rows[:1].expand_as(rows)):
        raise ValueError(f"{op}: win must hold the same window for every channel")
    g = rows[0]
    if g.numel() % 2 == 0:
        raise ValueError(f"{op}: Window size should be odd, got a window of {g.numel()}")
    sigma = _gaussian_sigma(g)
    return (g.numel(), sigma, None) if sigma is not None else (g.numel(), None, g)


def _short_depth(op: str, X: torch.Tensor, size: int) -> bool:
    if X.dim() == 5 and X.shape[2] < size:
        warnings.warn(f"{op}: depth {X.shape[2]} of input {tuple(X.shape)} is smaller than the "
                      f"window ({size}): no smoothing along depth, as pytorch-msssim",
                      UserWarning, stacklevel=3)
        return True
    return False


def _ssim(X, Y, data_range, size_average, size, sigma, custom, K, nonnegative_ssim):
    """SSIM of squeezed inputs with a parsed window: (size, sigma) or a custom one."""
    k1, k2 = K
    if custom is not None:
        return reference.ssim(X, Y, data_range=data_range, k1=k1, k2=k2, window=custom,
                              reduction="mean" if size_average else "none",
                              nonnegative=nonnegative_ssim)
    if _short_depth("ssim", X, size):
        # Each depth slice smoothed in 2-D: per (image, channel), the mean of its slices.
        n, c = X.shape[:2]
        per_channel = _fg_ssim(X.reshape(n * c, *X.shape[2:]), Y.reshape(n * c, *Y.shape[2:]),
                               data_range=data_range, window_size=size, sigma=sigma, k1=k1,
                               k2=k2, reduction="none").view(n, c)
        if nonnegative_ssim:
            per_channel = torch.relu(per_channel)
        return per_channel.mean() if size_average else per_channel.mean(1)
    return _fg_ssim(X, Y, data_range=data_range, window_size=size, sigma=sigma, k1=k1, k2=k2,
                    reduction="mean" if size_average else "none", nonnegative=nonnegative_ssim)


def _ms_ssim(X, Y, data_range, size_average, size, sigma, custom, weights, K):
    k1, k2 = K
    reduction = "mean" if size_average else "none"
    if custom is not None:
        return reference.ms_ssim(X, Y, data_range=data_range, k1=k1, k2=k2, weights=weights,
                                 window=custom, reduction=reduction)
    return _fg_ms_ssim(X, Y, data_range=data_range, window_size=size, sigma=sigma, k1=k1, k2=k2,
                       weights=weights, reduction=reduction)


def ssim(X: torch.Tensor, Y: torch.Tensor, data_range: float = 255, size_average: bool = True,
         win_size: int = 11, win_sigma: float = 1.5, win: torch.Tensor | None = None,
         K=(0.01, 0.03), nonnegative_ssim: bool = False) -> torch.Tensor:
    """pytorch_msssim.ssim: the batch mean (size_average) or the per-image SSIM."""
    X, Y = _squeezed("ssim", X, Y)
    size, sigma, custom = _window("ssim", win, win_size, win_sigma, X)
    return _ssim(X, Y, data_range, size_average, size, sigma, custom, K, nonnegative_ssim)


def ms_ssim(X: torch.Tensor, Y: torch.Tensor, data_range: float = 255, size_average: bool = True,
            win_size: int = 11, win_sigma: float = 1.5, win: torch.Tensor | None = None,
            weights=None, K=(0.01, 0.03)) -> torch.Tensor:
    """pytorch_msssim.ms_ssim: the batch mean (size_average) or the per-image MS-SSIM."""
    X, Y = _squeezed("ms_ssim", X, Y)
    size, sigma, custom = _window("ms_ssim", win, win_size, win_sigma, X)
    return _ms_ssim(X, Y, data_range, size_average, size, sigma, custom, weights, K)


def _check_rank(op: str, X: torch.Tensor, spatial_dims: int) -> None:
    if X.dim() != spatial_dims + 2:
        raise ValueError(f"{op}: spatial_dims={spatial_dims} takes {spatial_dims + 2}-D input, got "
                         f"shape {tuple(X.shape)} (after squeezing singleton axes)")


def _module_window(op: str, win_size, win_sigma, channel: int, spatial_dims: int) -> torch.Tensor:
    if spatial_dims not in (2, 3):
        raise ValueError(f"{op}: spatial_dims must be 2 (images) or 3 (volumes), got {spatial_dims!r}")
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size % 2 == 0:
        raise ValueError(f"{op}: Window size should be odd, got win_size={win_size!r}")
    g = reference.gaussian_window(win_size, win_sigma, torch.float32)
    return g.view(1, 1, *[1] * (spatial_dims - 1), win_size).repeat(channel, *[1] * (spatial_dims + 1))


class SSIM(torch.nn.Module):
    """pytorch_msssim.SSIM: ``spatial_dims`` 2 for (N, C, H, W) images, 3 for (N, C, D, H, W)
    volumes; ``win`` holds the window as there, (channel, 1, [1,] 1, win_size). The forward
    runs the kernels with the window's size and sigma (no parsing of ``win``: it traces
    under torch.compile(fullgraph=True))."""

    def __init__(self, data_range: float = 255, size_average: bool = True, win_size: int = 11,
                 win_sigma: float = 1.5, channel: int = 3, spatial_dims: int = 2, K=(0.01, 0.03),
                 nonnegative_ssim: bool = False) -> None:
        super().__init__()
        self.win_size, self.win_sigma, self.spatial_dims = win_size, win_sigma, spatial_dims
        self.win = _module_window("SSIM", win_size, win_sigma, channel, spatial_dims)
        self.size_average, self.data_range = size_average, data_range
        self.K, self.nonnegative_ssim = K, nonnegative_ssim

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        X, Y = _squeezed("SSIM", X, Y)
        _check_rank("SSIM", X, self.spatial_dims)
        return _ssim(X, Y, self.data_range, self.size_average, self.win_size, self.win_sigma,
                     None, self.K, self.nonnegative_ssim)


class MS_SSIM(torch.nn.Module):
    """pytorch_msssim.MS_SSIM (``spatial_dims`` and ``win`` as in :class:`SSIM`)."""

    def __init__(self, data_range: float = 255, size_average: bool = True, win_size: int = 11,
                 win_sigma: float = 1.5, channel: int = 3, spatial_dims: int = 2, weights=None,
                 K=(0.01, 0.03)) -> None:
        super().__init__()
        self.win_size, self.win_sigma, self.spatial_dims = win_size, win_sigma, spatial_dims
        self.win = _module_window("MS_SSIM", win_size, win_sigma, channel, spatial_dims)
        self.size_average, self.data_range = size_average, data_range
        self.weights, self.K = weights, K

    def forward(self, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        X, Y = _squeezed("MS_SSIM", X, Y)
        _check_rank("MS_SSIM", X, self.spatial_dims)
        return _ms_ssim(X, Y, self.data_range, self.size_average, self.win_size, self.win_sigma,
                        None, self.weights, self.K)
