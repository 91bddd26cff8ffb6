"""Plain-PyTorch definitions of every fastgan op: the specification, the test oracle
and the fallback when no compiled kernel can run.

Conventions (see DESIGN.md): images are (N, C, H, W) (the SSIM family also takes
(N, C, D, H, W) volumes, the window applied along all three axes); a mask holds weights in [0, 1]
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


# ---------------------------------------------------------------------------------------
# SSIM family: SSIM, its map, MS-SSIM, the SSIM + L1 mix and PSNR.
#
# Gaussian window of `window_size` taps (odd), sigma 1.5, normalised to sum 1; separable.
# padding "valid": no padding, the map is (H - 2r, W - 2r), r = window_size // 2; this is
# scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False) and pytorch-msssim. "same": zero padding, map (H, W), as
# fused-ssim. "reflect": torch's reflect padding (edge not repeated), map (H, W), as
# kornia and torchmetrics >= 1.4.2. Masks are given at the image size and cropped to the
# map for "valid" (the weight of a map pixel is the mask at its window's centre).

SSIM_PADDINGS = {"valid": 0, "same": 1, "reflect": 2}
SSIM_STATS = {"ssim": 0, "cs": 1, "mix": 2}
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(window_size: int, sigma: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """The normalised 1-D Gaussian window exp(-(i - r)^2 / (2 sigma^2)), i = 0..window_size-1."""
    d = torch.arange(window_size, dtype=torch.float64, device=device) - window_size // 2
    g = torch.exp(-(d * d) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def _smoothed_axes(t: torch.Tensor, k: int) -> tuple[int, ...]:
    """The spatial axes a k-tap window smooths: those at least k long (pytorch-msssim
    skips shorter ones; the public functions only let a short depth through, for MS-SSIM)."""
    return tuple(a for a in range(2, t.dim()) if t.shape[a] >= k)


def _gaussian_filter(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filter of every channel of t, (N, C, H, W) or (N, C, D, H, W),
    with the 1-D window g along each spatial axis that is at least g's length."""
    c, k = t.shape[1], g.numel()
    conv = torch.nn.functional.conv2d if t.dim() == 4 else torch.nn.functional.conv3d
    for axis in _smoothed_axes(t, k):
        taps = g.view([k if a == axis else 1 for a in range(t.dim())])
        t = conv(t, taps.expand(c, *taps.shape[1:]), groups=c)
    return t


def _pad(t: torch.Tensor, padding: str, r: int) -> torch.Tensor:
    if padding == "valid":
        return t
    mode = "constant" if padding == "same" else "reflect"
    return torch.nn.functional.pad(t, (r, r) * (t.dim() - 2), mode=mode)


def ssim_stat_map(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0,
                  window_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
                  padding: str = "valid", stat: str = "ssim", alpha: float = 0.84,
                  window: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel (per-voxel for 5-D inputs) map in opmath precision: "ssim", "cs"
    (contrast-structure, MS-SSIM's A2 / B2) or "mix" = alpha (1 - ssim) + (1 - alpha)
    G*|x - y| / data_range. window: a 1-D window used instead of the Gaussian of
    window_size and sigma (pytorch-msssim's ``win``)."""
    if window is not None:
        window_size = window.numel()
    r = window_size // 2
    a, b = _pad(_opmath(x), padding, r), _pad(_opmath(y), padding, r)
    g = (gaussian_window(window_size, sigma, a.dtype, a.device) if window is None
         else window.reshape(-1).to(a.device, a.dtype))
    mx, my = _gaussian_filter(a, g), _gaussian_filter(b, g)
    exx, eyy, exy = _gaussian_filter(a * a, g), _gaussian_filter(b * b, g), _gaussian_filter(a * b, g)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    vx, vy, cov = exx - mx * mx, eyy - my * my, exy - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    if stat == "cs":
        return cs
    s = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    if stat == "ssim":
        return s
    l1 = _gaussian_filter((a - b).abs(), g)
    return alpha * (1 - s) + (1 - alpha) * l1 / data_range


def ssim_map(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
             sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
             padding: str = "valid") -> torch.Tensor:
    """The per-pixel SSIM map, (N, C, H', W') in x's dtype."""
    return ssim_stat_map(x, y, data_range=data_range, window_size=window_size, sigma=sigma,
                         k1=k1, k2=k2, padding=padding).to(x.dtype)


def _map_weights(mask: torch.Tensor | None, like: torch.Tensor, padding: str,
                 r: int) -> torch.Tensor:
    if mask is None:
        return torch.ones_like(like)
    w = _opmath(mask)
    if padding == "valid":  # the weight of a map pixel: the mask at its window's centre
        w = w[(slice(None), slice(None),
               *(slice(r, s - r) if s != m else slice(None) for s, m in zip(w.shape[2:], like.shape[2:])))]
    return w.expand_as(like)


def ssim_plane_sums(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *,
                    data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
                    k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
                    stat: str = "ssim", alpha: float = 0.84, window: torch.Tensor | None = None):
    """What the ssim_forward op returns: per (image, channel) plane (or volume), sum_p w_p v_p
    and sum_p w_p over the map ((N, C) each, opmath dtype)."""
    v = ssim_stat_map(x, y, data_range=data_range, window_size=window_size, sigma=sigma, k1=k1,
                      k2=k2, padding=padding, stat=stat, alpha=alpha, window=window)
    w = _map_weights(mask, v, padding, window_size // 2)
    dims = tuple(range(2, v.dim()))
    return (w * v).sum(dim=dims), w.sum(dim=dims)


def ssim_reduce(sums: torch.Tensor, weights: torch.Tensor, reduction: str,
                nonnegative: bool = False) -> torch.Tensor:
    """Per-plane sums -> the reduced value: the masked mean of each plane (0 where its
    weights sum to 0), ReLU'd when nonnegative, then combined weighted by the planes'
    weight sums: "mean" over the batch, "none" per image, "sum" = sum of w * value."""
    means = _safe_ratio(sums, weights)
    if nonnegative:
        means = torch.relu(means)
    total = means * weights
    if reduction == "sum":
        return total.sum()
    if reduction == "none":
        return _safe_ratio(total.sum(1), weights.sum(1))
    return _safe_ratio(total.sum(), weights.sum())


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
         sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
         mask: torch.Tensor | None = None, reduction: str = "mean",
         nonnegative: bool = False, window: torch.Tensor | None = None) -> torch.Tensor:
    """SSIM: the (masked) mean of the SSIM map. nonnegative: ReLU on each (image, channel)
    mean, as pytorch-msssim's nonnegative_ssim."""
    sums, weights = ssim_plane_sums(x, y, mask, data_range=data_range, window_size=window_size,
                                    sigma=sigma, k1=k1, k2=k2, padding=padding, window=window)
    return ssim_reduce(sums, weights, reduction, nonnegative).to(x.dtype)


def ms_ssim_pool(t: torch.Tensor) -> torch.Tensor:
    """MS-SSIM's 2x downsampling: 2x2 (2x2x2 for volumes) average, odd sizes zero-padded by
    one on each side (count_include_pad), as pytorch-msssim."""
    pool = torch.nn.functional.avg_pool2d if t.dim() == 4 else torch.nn.functional.avg_pool3d
    return pool(t, kernel_size=2, padding=[s % 2 for s in t.shape[2:]])


def ms_ssim_min_size(window_size: int, levels: int) -> int:
    """The smallest side that keeps window_size pixels after levels - 1 halvings."""
    return (window_size - 1) * 2 ** (levels - 1) + 1


def ms_ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window_size: int = 11,
            sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03, weights=None,
            padding: str = "valid", reduction: str = "mean",
            window: torch.Tensor | None = None) -> torch.Tensor:
    """MS-SSIM (pytorch-msssim's definition): per (image, channel), the product over
    scales of relu(mean cs)^w_l and, at the last scale, relu(mean ssim)^w_last; then the
    mean over channels ("none", per image), over everything ("mean") or the sum of the
    per-image values ("sum"). Volumes are pooled over all three axes; an axis shorter
    than the window at some scale is not smoothed there (pytorch-msssim's rule)."""
    w = torch.tensor(MS_SSIM_WEIGHTS if weights is None else weights, dtype=torch.float64)
    a, b = _opmath(x), _opmath(y)
    opts = dict(data_range=data_range, window_size=window_size, sigma=sigma, k1=k1, k2=k2,
                padding=padding, window=window)
    values = []
    for level in range(len(w)):
        stat = "ssim" if level == len(w) - 1 else "cs"
        sums, cnt = ssim_plane_sums(a, b, None, stat=stat, **opts)
        values.append(torch.relu(sums / cnt))
        if level < len(w) - 1:
            a, b = ms_ssim_pool(a), ms_ssim_pool(b)
    stacked = torch.stack(values)
    per_plane = torch.prod(stacked ** w.to(stacked.dtype).view(-1, 1, 1), dim=0)
    per_image = per_plane.mean(1)
    out = {"none": per_image, "sum": per_image.sum()}.get(reduction, per_image.mean())
    return out.to(x.dtype)


def ssim_l1_loss(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 0.84, data_range: float = 1.0,
                 mask: torch.Tensor | None = None, window_size: int = 11, sigma: float = 1.5,
                 k1: float = 0.01, k2: float = 0.03, padding: str = "valid",
                 reduction: str = "mean") -> torch.Tensor:
    """The SSIM + L1 mix of Zhao et al.: the (masked) mean over the map of
    alpha (1 - SSIM) + (1 - alpha) G*|x - y| / data_range, G the SSIM window."""
    sums, w = ssim_plane_sums(x, y, mask, data_range=data_range, window_size=window_size,
                              sigma=sigma, k1=k1, k2=k2, padding=padding, stat="mix", alpha=alpha)
    return ssim_reduce(sums, w, reduction).to(x.dtype)


def psnr(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0,
         mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """PSNR per image, 10 log10(data_range^2 / MSE) with the (masked) MSE of each image;
    "mean" / "sum" over the images' PSNRs, "none" gives them. Identical images: inf."""
    mse = masked_loss(_opmath(x), _opmath(y), mask if mask is None else _opmath(mask), kind="mse",
                      reduction="none")
    p = 10 * torch.log10(data_range ** 2 / mse)
    out = {"none": p, "sum": p.sum()}.get(reduction, p.mean())
    return out.to(x.dtype)


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
