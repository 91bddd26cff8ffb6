"""InstanceNorm + activation, fused: the function, the module and a Conv -> Norm -> Act block.

``instance_norm_act`` computes, in one op,

    y = act(weight_c * (x - mean_nc) / sqrt(var_nc + eps) + bias_c)

with the mean and biased variance of each (n, c) plane over H x W, i.e.
``nn.Sequential(nn.InstanceNorm2d(C, affine=...), nn.LeakyReLU(negative_slope))``
(ReLU for slope 0). The forward reads x once and writes y; the backward reads dy and x
once and writes dx; only x and two (N, C) statistics are kept for the backward. Both
memory layouts run without copies (NCHW and channels_last; eager InstanceNorm2d
quietly returns NCHW for channels_last input, pytorch issue 72341).

BatchNorm is deliberately not fused. The pix2pix reference code defaults to
``--norm batch`` but trains with batch size 1, where batch norm in training mode *is*
instance norm with an affine transform, which is what the paper itself notes ("when
batch size is set to 1, this approach has been termed instance normalization"); it also
evaluates in train mode, i.e. with the test image's statistics. So the models default
to ``norm="instance"`` with pix2pix's ``InstanceNorm2d(affine=False)`` (an affine
``InstanceNormAct(affine=True)`` would reproduce batch norm at batch size 1 exactly).
For batch sizes > 1, ``ConvNormAct(norm="batch")`` uses ``nn.BatchNorm2d`` and the
activation as separate modules, because: eager batch norm on the CPU is already one
channels_last-aware ATen kernel; its statistics reduce over N x H x W and update running
buffers in place (a mutating custom op that compile and CUDA graphs handle worse);
in eval mode it folds into the preceding convolution entirely; and ``torch.compile``
fuses the activation into it. A fused kernel would buy little over that.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from fastgan import _checks, ops
from fastgan.ops.instance_norm_act import ACTIVATION_CODES

__all__ = ["instance_norm_act", "InstanceNormAct", "ConvNormAct"]

ACTIVATIONS = ("leaky_relu", "relu", "identity")


def _activation(op: str, activation, negative_slope) -> tuple[int, float]:
    """(kernel activation code, slope) for a public activation name."""
    if activation is None:
        activation = "identity"
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {activation!r}")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
        raise TypeError(f"{op}: negative_slope must be a number, got {type(negative_slope).__name__}")
    if not math.isfinite(negative_slope):
        raise ValueError(f"{op}: negative_slope must be finite, got {negative_slope}")
    if activation == "identity":
        return ACTIVATION_CODES["identity"], 0.0
    return ACTIVATION_CODES["leaky_relu"], 0.0 if activation == "relu" else float(negative_slope)


def _check_param(op: str, name: str, p, x: torch.Tensor) -> None:
    if p is None:
        return
    _checks.check_tensor(op, name, p)
    c = x.shape[1]
    if p.shape != (c,):
        raise ValueError(f"{op}: {name} must have shape (C,) = ({c},) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(p.shape)}")
    if p.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{op}: {name} must be float16, bfloat16, float32 or float64, got {p.dtype}")
    if p.device != x.device:
        raise ValueError(f"{op}: {name} must be on {x.device}, got {p.device}")


def check_input(op: str, x) -> None:
    """x: a floating (N, C, H, W) tensor with N, C >= 1 and more than one pixel."""
    _checks.check_tensor(op, "x", x)
    if x.dim() != 4:
        hint = " (a single image? add the batch dimension: x.unsqueeze(0))" if x.dim() == 3 else ""
        raise ValueError(f"{op}: x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}{hint}")
    if x.dtype not in _checks.FLOAT_DTYPES:
        raise TypeError(f"{op}: x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"{op}: x is an empty batch (N = 0); at least one image is needed")
    if x.shape[1] == 0:
        raise ValueError(f"{op}: x has no channels, shape {tuple(x.shape)}")
    if x.shape[2] * x.shape[3] <= 1:
        # The same error (type and words) as nn.InstanceNorm2d in training.
        raise ValueError(
            f"{op}: Expected more than 1 spatial element when training, got input size "
            f"{tuple(x.shape)}: the variance of a single value is 0, so every output would "
            "be the bias (a 1x1 feature map, e.g. the innermost U-Net block, takes no norm)")


def instance_norm_act(x: torch.Tensor, weight: torch.Tensor | None = None,
                      bias: torch.Tensor | None = None, *, eps: float = 1e-5,
                      negative_slope: float = 0.2, activation: str = "leaky_relu") -> torch.Tensor:
    """Instance normalisation followed by an activation, fused.

    x: (N, C, H, W) float16/bfloat16/float32/float64, NCHW or channels_last (kept in the
    output); H * W > 1. weight, bias: optional (C,) affine parameters (float32 weights
    with a half-precision x are fine; gradients come back in the parameters' dtype).
    eps: added to the biased variance. activation: "leaky_relu" with ``negative_slope``
    (default 0.2, PatchGAN / pix2pix encoder), "relu" (the decoder) or "identity".
    Statistics accumulate in float32 (float64 for float64 x).

    Equal to ``F.leaky_relu(F.instance_norm(x, weight=weight, bias=bias, eps=eps),
    negative_slope)``. Not twice differentiable on the compiled backends (use
    ``fg.backend("reference")`` for gradient penalties that need it).
    """
    op = "instance_norm_act"
    check_input(op, x)
    _check_param(op, "weight", weight, x)
    _check_param(op, "bias", bias, x)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"{op}: eps must be a number, got {type(eps).__name__}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"{op}: eps must be a finite number >= 0, got {eps}")
    code, slope = _activation(op, activation, negative_slope)
    y, stats = ops.instance_norm_act(x, weight, bias, float(eps), slope, code)
    # NaN/Inf anywhere in a plane shows in its mean: a look at N*C values, not at y.
    _checks.check_finite_result(op, y if stats is None else stats, x=x, weight=weight, bias=bias)
    return y


class InstanceNormAct(nn.Module):
    """``nn.InstanceNorm2d`` + ``nn.LeakyReLU(negative_slope)`` (or ReLU / identity) as one
    fused op; see :func:`instance_norm_act`.

    Parameters ``weight`` and ``bias`` (when ``affine``) have nn.InstanceNorm2d's names and
    shapes, so its state_dict loads as is. Statistics always come from the input, as in
    nn.InstanceNorm2d with the default ``track_running_stats=False``; running statistics
    in a loaded state_dict are dropped with a warning.
    """

    def __init__(self, num_features: int, *, affine: bool = False, eps: float = 1e-5,
                 negative_slope: float = 0.2, activation: str = "leaky_relu",
                 device=None, dtype=None) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"InstanceNormAct: num_features must be a positive int, got {num_features!r}")
        _activation("InstanceNormAct", activation, negative_slope)  # validate early
        self.num_features = num_features
        self.affine = affine
        self.eps = eps
        self.negative_slope = negative_slope
        self.activation = "identity" if activation is None else activation
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, device=device, dtype=dtype))
            self.bias = nn.Parameter(torch.zeros(num_features, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.dim() >= 2 and x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNormAct: expected {self.num_features} channels, got x of "
                             f"shape {tuple(x.shape)}")
        return instance_norm_act(x, self.weight, self.bias, eps=self.eps,
                                 negative_slope=self.negative_slope, activation=self.activation)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        running = [prefix + k for k in ("running_mean", "running_var", "num_batches_tracked")]
        found = [k for k in running if k in state_dict]
        if found:
            warnings.warn(f"InstanceNormAct: ignoring {', '.join(found)}: statistics always "
                          "come from the input (nn.InstanceNorm2d with track_running_stats=False)",
                          stacklevel=2)
            for k in found:
                state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        act = self.activation + (f", negative_slope={self.negative_slope}"
                                 if self.activation == "leaky_relu" else "")
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}, activation={act}"


class ConvNormAct(nn.Module):
    """Conv2d (or ConvTranspose2d) -> norm -> activation, the block of the PatchGAN and U-Net.

    norm: "instance" (fused :class:`InstanceNormAct`, the default), "batch"
    (``nn.BatchNorm2d`` then the activation, unfused: see this module's docstring) or
    "none". activation: "leaky_relu" (``negative_slope``), "relu" or "identity".
    bias: the convolution's bias; by default only without a norm, since a norm removes
    any per-channel constant. Defaults (kernel 4, stride 2, padding 1) are pix2pix's.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2,
                 padding: int = 1, *, norm: str = "instance", activation: str = "leaky_relu",
                 negative_slope: float = 0.2, affine: bool = True, bias: bool | None = None,
                 transposed: bool = False, padding_mode: str = "zeros", eps: float = 1e-5,
                 dilation: int = 1, device=None, dtype=None) -> None:
        super().__init__()
        if norm not in ("instance", "batch", "none"):
            raise ValueError(f"ConvNormAct: norm must be 'instance', 'batch' or 'none', got {norm!r}")
        code, slope = _activation("ConvNormAct", activation, negative_slope)
        if bias is None:
            bias = norm == "none"
        kw = dict(bias=bias, dilation=dilation, device=device, dtype=dtype)
        if transposed:
            self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, **kw)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                  padding_mode=padding_mode, **kw)
        if norm == "instance":
            self.norm = InstanceNormAct(out_channels, affine=affine, eps=eps,
                                        negative_slope=negative_slope, activation=activation,
                                        device=device, dtype=dtype)
            self.act = nn.Identity()
            return
        self.norm = (nn.BatchNorm2d(out_channels, eps=eps, affine=affine, device=device, dtype=dtype)
                     if norm == "batch" else nn.Identity())
        if code == ACTIVATION_CODES["identity"]:
            self.act = nn.Identity()
        elif slope == 0.0:
            self.act = nn.ReLU()
        else:
            self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))
