"""Triton implementations of the SSIM family, as ``torch.ops.fastgan_triton.ssim_*``.

Same schemas and semantics as the C++ ops (csrc/registration.cpp, csrc/cpu/ssim.cpp),
kernels in ``fastgan.kernels.ssim``; (N, C, D, H, W) volumes run the same kernels with
their depth loop on (DWIN = window), one program per depth slice and tile. Inputs are read
through their strides (no layout copies). The backward stores the coefficient maps (4 per
plane, 5 for the mix, in float32) between its two kernels, then folds the gradient of the
padded image back into the image with torch ops. Nothing reads device data on the host, so torch.compile
traces the bodies and CUDA graphs can capture them. Fake kernels and autograd come from
fastgan.ops.ssim's ``register`` / ``register_map``.
"""

import struct
from typing import NamedTuple, Optional

import torch
import triton
from torch import Tensor
from torch.library import triton_op, wrap_triton

from fastgan.ops import triton_losses  # noqa: F401  (loads fastgan.kernels, also from a source tree)
from fastgan.ops._common import like_kernel_output, opmath_dtype
from fastgan.ops.ssim import fake_backward, fake_map_backward, register, register_map
from fastgan.kernels.ssim import ssim_grad_kernel, ssim_map_kernel  # noqa: E402

BH, BW = 16, 32


def _parts(v: float):
    """A float as two float32 halves (hi + lo), so float64 kernels keep its precision."""
    v = float(v)
    hi = struct.unpack("f", struct.pack("f", v))[0]
    return hi, v - hi


def _strides(t: Tensor):
    """(n, c, d, h, w) element strides; d = 0 for images, c = 0 to broadcast one channel."""
    s = list(t.stride())
    if t.shape[1] == 1:
        s[1] = 0  # broadcast over channels
    return s if t.dim() == 5 else [s[0], s[1], 0, s[2], s[3]]


def _window(window_size: int, sigma: float, dtype, device) -> Tensor:
    d = torch.arange(window_size, dtype=torch.float64, device=device) - window_size // 2
    g = torch.exp(-(d * d) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


class _Geometry(NamedTuple):
    n: int
    c: int
    d: int  # 1 for images
    h: int
    w: int
    pad: int
    dpad: int  # pad for volumes, 0 for images
    dwin: int  # the window along depth: window_size for volumes, 1 for images
    dp: int
    hp: int
    wp: int
    do: int
    ho: int
    wo: int


def _geometry(x: Tensor, window_size: int, padding: int) -> _Geometry:
    n, c, *spatial = x.shape
    d, h, w = spatial if x.dim() == 5 else (1, *spatial)
    r = window_size // 2
    pad = 0 if padding == 0 else r
    dpad, dwin = (pad, window_size) if x.dim() == 5 else (0, 1)
    dp, hp, wp = d + 2 * dpad, h + 2 * pad, w + 2 * pad
    return _Geometry(n, c, d, h, w, pad, dpad, dwin, dp, hp, wp, dp - 2 * (dwin // 2),
                     hp - 2 * r, wp - 2 * r)


def _check(x: Tensor, y: Tensor, window_size: int, padding: int, stat: int) -> None:
    torch._check(x.dim() in (4, 5) and x.shape == y.shape and x.dtype == y.dtype,
                 lambda: f"x and y must be 4-D or 5-D of one shape and dtype, got {x.shape}, {y.shape}")
    torch._check(window_size % 2 == 1 and 3 <= window_size <= 15,
                 lambda: f"window_size must be odd, 3 to 15, got {window_size}")
    torch._check(all(s >= window_size for s in x.shape[2:]),
                 lambda: f"images of {tuple(x.shape[2:])} are smaller than the window")
    torch._check(padding in (0, 1, 2), lambda: f"padding code must be 0, 1 or 2, got {padding}")
    torch._check(stat in (0, 1, 2), lambda: f"stat code must be 0, 1 or 2, got {stat}")


def _map_pass(x, y, mask, window_size, sigma, k1, k2, data_range, padding, stat, alpha, *,
              grad_map=None, factor=None, write_map=False, coef=False):
    """Launch ssim_map_kernel; returns (per-plane sums, weights, map or None, coef or None)."""
    _check(x, y, window_size, padding, stat)
    geo = _geometry(x, window_size, padding)
    n, c, ho, wo = geo.n, geo.c, geo.ho, geo.wo
    acc = opmath_dtype(x.dtype)
    tiles_w = triton.cdiv(wo, BW)
    tiles = triton.cdiv(ho, BH) * tiles_w
    g = _window(window_size, sigma, acc, x.device)
    part = x.new_empty((n * c * geo.do, tiles, 2), dtype=acc)
    out_map = x.new_empty(x.shape[:2] + (geo.do,) * (x.dim() - 4) + (ho, wo)) if write_map else part
    coef_buf = (x.new_empty((n * c * geo.do, 5 if stat == 2 else 4, ho, wo), dtype=acc) if coef
                else part)
    if mask is not None:
        torch._check(mask.dim() == x.dim() and mask.shape[0] == n and mask.shape[1] in (1, c)
                     and mask.shape[2:] == x.shape[2:] and mask.dtype == x.dtype,
                     lambda: f"mask must be (N, 1, ...) or x's shape, got {mask.shape}")
    m = mask if mask is not None else x
    gm = grad_map.to(x.dtype) if grad_map is not None else x
    f = factor if factor is not None else part
    fs = list(factor.stride()) if factor is not None else [0, 0]
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    beta = (1.0 - alpha) / data_range
    wrap_triton(ssim_map_kernel)[(n * c * geo.do, tiles)](
        x, y, m, gm, f, g, part, out_map, coef_buf, c, geo.d, geo.h, geo.w, geo.do, ho, wo, tiles_w,
        *_strides(x), *_strides(y), *_strides(m), *_strides(gm), *fs,
        *_parts(c1), *_parts(c2), *_parts(alpha), *_parts(beta),
        WIN=window_size, PAD=geo.pad, PADDING=padding, STAT=stat, MASK=mask is not None,
        GRAD_MAP=grad_map is not None, FACTOR=factor is not None, WRITE_MAP=write_map,
        COEF=coef, BH=BH, BW=BW, DWIN=geo.dwin, DPAD=geo.dpad)
    sums = part[:, :, 0].reshape(n * c, -1).sum(1).view(n, c)
    weights = part[:, :, 1].reshape(n * c, -1).sum(1).view(n, c)
    return sums, weights, (out_map if write_map else None), (coef_buf if coef else None)


def _fold_depth(gp: Tensor, d: int, pad: int, padding: int) -> Tensor:
    """The gradient of padded volumes (P, DP, HP, WP) -> of their image slices (P, D, HP, WP)."""
    if padding == 0:
        return gp
    if padding == 1:
        return gp[:, pad:pad + d]
    out = gp[:, pad:pad + d].clone()
    out[:, 1:pad + 1] += gp[:, :pad].flip(1)
    out[:, d - 1 - pad:d - 1] += gp[:, pad + d:].flip(1)
    return out


def _fold(gp: Tensor, h: int, w: int, pad: int, padding: int) -> Tensor:
    """The gradient of the padded planes (P, HP, WP) -> of the image planes (P, H, W)."""
    if padding == 0:
        return gp
    if padding == 1:
        return gp[:, pad:pad + h, pad:pad + w]
    rows = gp[:, pad:pad + h, :].clone()
    rows[:, 1:pad + 1, :] += gp[:, :pad, :].flip(1)
    rows[:, h - 1 - pad:h - 1, :] += gp[:, pad + h:, :].flip(1)
    out = rows[:, :, pad:pad + w].clone()
    out[:, :, 1:pad + 1] += rows[:, :, :pad].flip(2)
    out[:, :, w - 1 - pad:w - 1] += rows[:, :, pad + w:].flip(2)
    return out


def _grad_pass(coef: Tensor, x: Tensor, y: Tensor, window_size: int, sigma: float, padding: int,
               stat: int, need_x: bool, need_y: bool):
    geo = _geometry(x, window_size, padding)
    n, c, h, w, pad, hp, wp = geo.n, geo.c, geo.h, geo.w, geo.pad, geo.hp, geo.wp
    acc = coef.dtype
    g = _window(window_size, sigma, acc, x.device)
    tiles_w = triton.cdiv(wp, BW)
    tiles = triton.cdiv(hp, BH) * tiles_w
    gxp = x.new_empty((n * c, geo.dp, hp, wp), dtype=acc) if need_x else coef
    gyp = x.new_empty((n * c, geo.dp, hp, wp), dtype=acc) if need_y else coef
    if need_x or need_y:
        wrap_triton(ssim_grad_kernel)[(n * c * geo.dp, tiles)](
            coef, g, x, y, gxp, gyp, c, geo.d, h, w, geo.dp, hp, wp, geo.do, geo.ho, geo.wo, tiles_w,
            *_strides(x), *_strides(y), WIN=window_size, PAD=pad, PADDING=padding, MIX=stat == 2,
            NEED_X=need_x, NEED_Y=need_y, BH=BH, BW=BW, DWIN=geo.dwin, DPAD=geo.dpad)
    outs = []
    for needed, gp in ((need_x, gxp), (need_y, gyp)):
        if not needed:
            outs.append(x.new_empty((0,)))
            continue
        slices = _fold_depth(gp, geo.d, geo.dpad, padding).reshape(-1, hp, wp)
        grad = _fold(slices, h, w, pad, padding).reshape(x.shape)
        out = like_kernel_output(x)
        out.copy_(grad)
        outs.append(out)
    return outs[0], outs[1]


@triton_op("fastgan_triton::ssim_forward", mutates_args=())
def ssim_forward(x: Tensor, y: Tensor, mask: Optional[Tensor], window_size: int, sigma: float,
                 k1: float, k2: float, data_range: float, padding: int, stat: int,
                 alpha: float) -> tuple[Tensor, Tensor]:
    sums, weights, _, _ = _map_pass(x, y, mask, window_size, sigma, k1, k2, data_range, padding,
                                    stat, alpha)
    return sums, weights


@triton_op("fastgan_triton::ssim_backward", mutates_args=())
def ssim_backward(grad: Tensor, x: Tensor, y: Tensor, mask: Optional[Tensor], window_size: int,
                  sigma: float, k1: float, k2: float, data_range: float, padding: int, stat: int,
                  alpha: float, need_x: bool, need_y: bool) -> tuple[Tensor, Tensor]:
    torch._check(grad.numel() == x.shape[0] * x.shape[1],
                 lambda: f"grad must have N * C elements, got {grad.shape}")
    factor = grad.reshape(x.shape[0], x.shape[1])
    _, _, _, coef = _map_pass(x, y, mask, window_size, sigma, k1, k2, data_range, padding, stat,
                              alpha, factor=factor, coef=True)
    return _grad_pass(coef, x, y, window_size, sigma, padding, stat, need_x, need_y)


@triton_op("fastgan_triton::ssim_map_forward", mutates_args=())
def ssim_map_forward(x: Tensor, y: Tensor, window_size: int, sigma: float, k1: float, k2: float,
                     data_range: float, padding: int, stat: int, alpha: float) -> Tensor:
    _, _, out, _ = _map_pass(x, y, None, window_size, sigma, k1, k2, data_range, padding, stat,
                             alpha, write_map=True)
    return out


@triton_op("fastgan_triton::ssim_map_backward", mutates_args=())
def ssim_map_backward(grad: Tensor, x: Tensor, y: Tensor, window_size: int, sigma: float,
                      k1: float, k2: float, data_range: float, padding: int, stat: int,
                      alpha: float, need_x: bool, need_y: bool) -> tuple[Tensor, Tensor]:
    _, _, _, coef = _map_pass(x, y, None, window_size, sigma, k1, k2, data_range, padding, stat,
                              alpha, grad_map=grad, coef=True)
    return _grad_pass(coef, x, y, window_size, sigma, padding, stat, need_x, need_y)


torch.library.register_fake("fastgan_triton::ssim_backward")(fake_backward)
register("fastgan_triton::ssim_forward", ssim_backward)
torch.library.register_fake("fastgan_triton::ssim_map_backward")(fake_map_backward)
register_map("fastgan_triton::ssim_map_forward", ssim_map_backward)
