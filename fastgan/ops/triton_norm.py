"""Triton implementation of InstanceNorm + activation, as ``torch.ops.fastgan_triton.*``.

Same schemas and semantics as the C++ ops (csrc/registration.cpp, csrc/cpu/instance_norm_act.cpp):
  instance_norm_act_forward(x, weight?, bias?, eps, negative_slope, activation) -> (y, mean, rstd)
  instance_norm_act_backward(grad_y, x, weight?, bias?, mean, rstd, negative_slope, activation,
                             need_x) -> (grad_x, grad_weight, grad_bias)
One program per (image, channel block) computes the statistics and writes the output in
the same launch (kernels/instance_norm_act.py); the backward's per-(n, c) sums become
d weight / d bias with a sum over N here. Nothing reads device data on the host.
"""

import struct
from typing import Optional

import torch
import triton
from torch import Tensor
from torch.library import triton_op, wrap_triton

from fastgan.ops import triton_losses  # noqa: F401  (maps fastgan.kernels in older editable installs)
from fastgan.ops._common import opmath_dtype
from fastgan.ops.instance_norm_act import fake_backward, register

# Kernels imported by name: torch finds a triton_op's kernels only in wrap_triton(name) calls.
from fastgan.kernels.instance_norm_act import norm_act_bwd_kernel, norm_act_fwd_kernel  # noqa: E402

BLOCK_P_NCHW = 1024  # pixels per tile of one plane
BLOCK_P_NHWC, BLOCK_C_NHWC = 64, 32  # pixel rows x channels per tile


def _split(v: float):
    # Float kernel arguments are float32: pass two float32 halves (hi + lo) so float64
    # kernels see eps and the slope at full precision.
    v = float(v)
    hi = struct.unpack("f", struct.pack("f", v))[0]
    return hi, v - hi


def _layout(x: Tensor):
    torch._check(x.dim() == 4, lambda: f"x must be 4-D (N, C, H, W), got {x.dim()}-D")
    torch._check(x.shape[2] * x.shape[3] > 1,
                 lambda: f"Expected more than 1 spatial element when training, got input size {x.shape}")
    nhwc = (not x.is_contiguous()) and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    return x.contiguous(memory_format=fmt), nhwc, fmt


def _blocks(c: int, nhwc: bool):
    if not nhwc:
        return BLOCK_P_NCHW, 1
    return BLOCK_P_NHWC, min(BLOCK_C_NHWC, triton.next_power_of_2(c))


def _param(p: Optional[Tensor], acc: torch.dtype, stand_in: Tensor):
    return (p.to(acc).contiguous(), True) if p is not None else (stand_in, False)


@triton_op("fastgan_triton::instance_norm_act_forward", mutates_args=())
def instance_norm_act_forward(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                              eps: float, negative_slope: float,
                              activation: int) -> tuple[Tensor, Tensor, Tensor]:
    torch._check(activation in (0, 1), lambda: f"activation code must be 0 or 1, got {activation}")
    x, nhwc, fmt = _layout(x)
    n, c, h, w = x.shape
    acc = opmath_dtype(x.dtype)
    mean = x.new_empty((n, c), dtype=acc)
    rstd = torch.empty_like(mean)
    y = torch.empty_like(x, memory_format=fmt)
    wt, has_w = _param(weight, acc, mean)
    bt, has_b = _param(bias, acc, mean)
    block_p, block_c = _blocks(c, nhwc)
    wrap_triton(norm_act_fwd_kernel)[(n, triton.cdiv(c, block_c))](
        x, y, wt, bt, mean, rstd, c, h * w, *_split(eps), *_split(negative_slope),
        HAS_W=has_w, HAS_B=has_b, ACT=activation, NHWC=nhwc, BLOCK_P=block_p, BLOCK_C=block_c)
    return y, mean, rstd


@triton_op("fastgan_triton::instance_norm_act_backward", mutates_args=())
def instance_norm_act_backward(grad_y: Tensor, x: Tensor, weight: Optional[Tensor],
                               bias: Optional[Tensor], mean: Tensor, rstd: Tensor,
                               negative_slope: float, activation: int,
                               need_x: bool) -> tuple[Tensor, Tensor, Tensor]:
    x, nhwc, fmt = _layout(x)
    n, c, h, w = x.shape
    acc = opmath_dtype(x.dtype)
    torch._check(grad_y.shape == x.shape, lambda: "grad_y must have x's shape")
    dy = grad_y.contiguous(memory_format=fmt)
    mean, rstd = mean.to(acc).contiguous(), rstd.to(acc).contiguous()
    dx = torch.empty_like(x, memory_format=fmt) if need_x else x.new_empty((0,))
    s1 = x.new_empty((n, c), dtype=acc)
    s2 = torch.empty_like(s1)
    wt, has_w = _param(weight, acc, mean)
    bt, has_b = _param(bias, acc, mean)
    block_p, block_c = _blocks(c, nhwc)
    wrap_triton(norm_act_bwd_kernel)[(n, triton.cdiv(c, block_c))](
        dy, x, dx if need_x else x, wt, bt, mean, rstd, s1, s2, c, h * w, *_split(negative_slope),
        HAS_W=has_w, HAS_B=has_b, ACT=activation, NHWC=nhwc, NEED_X=need_x, BLOCK_P=block_p,
        BLOCK_C=block_c)
    grad_w = s2.sum(0).to(weight.dtype) if weight is not None else x.new_empty((0,))
    grad_b = s1.sum(0).to(bias.dtype) if bias is not None else x.new_empty((0,))
    return dx, grad_w, grad_b


torch.library.register_fake("fastgan_triton::instance_norm_act_backward")(fake_backward)
register("fastgan_triton::instance_norm_act_forward", instance_norm_act_backward)
