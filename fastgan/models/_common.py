"""What every model shares: the meaning of ``norm`` and input checks.

``norm`` follows pix2pix everywhere so that one word means one thing across models:

- "instance": InstanceNorm2d(affine=False, track_running_stats=False) semantics, run by the
  fused :class:`fastgan.nn.InstanceNormAct`; the preceding convolution keeps its bias (pix2pix
  does, which is what makes the parameter counts equal to the reference).
- "batch": BatchNorm2d(affine=True); the preceding convolution has no bias (the norm's shift
  replaces it).
- "none": plain convolution with bias.
"""

from __future__ import annotations

import torch

from fastgan._checks import check_tensor
from fastgan.nn import ConvNormAct

NORMS = ("instance", "batch", "none")


def check_norm(op: str, norm) -> str:
    if norm not in NORMS:
        raise ValueError(f"{op}: norm must be one of {', '.join(repr(n) for n in NORMS)}, got {norm!r}")
    return norm


def check_positive_int(op: str, name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return value


def norm_kw(norm: str) -> dict:
    """The pix2pix bias/affine rule above, as keyword arguments of ConvNormAct and the blocks."""
    return dict(norm=norm, affine=norm == "batch", bias=norm != "batch")


def cna(in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2,
        padding: int = 1, *, norm: str, activation: str = "leaky_relu", transposed: bool = False,
        bias: bool | None = None) -> ConvNormAct:
    """ConvNormAct with the pix2pix bias/affine rule above (``bias`` overrides the rule)."""
    kw = norm_kw(norm)
    if bias is not None:
        kw["bias"] = bias
    return ConvNormAct(in_channels, out_channels, kernel_size, stride, padding,
                       activation=activation, negative_slope=0.2, transposed=transposed, **kw)


def check_image(op: str, name: str, x, channels: int | None = None,
                size: int | None = None) -> None:
    """x: a floating (N, C, H, W) tensor with N >= 1 (and C == channels, H == W == size
    when given)."""
    check_tensor(op, name, x)
    if x.dim() != 4:
        raise ValueError(f"{op}: {name} must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: {name} must be a floating tensor, got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{op}: {name} is an empty batch (N = 0)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{op}: {name} must have {channels} channels, got shape {tuple(x.shape)}")
    if size is not None and x.shape[-2:] != (size, size):
        raise ValueError(f"{op}: {name} must be {size}x{size} (size={size}), "
                         f"got shape {tuple(x.shape)}")
