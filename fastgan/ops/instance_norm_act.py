"""InstanceNorm + activation as custom ops.

Ops (schemas in csrc/registration.cpp, Triton twins in fastgan/ops/triton_norm.py):
  instance_norm_act_forward(x, weight?, bias?, eps, negative_slope, activation)
      -> (y, mean, rstd)          mean, rstd: (N, C) float32 (float64 for float64 x)
  instance_norm_act_backward(grad_y, x, weight?, bias?, mean, rstd, negative_slope,
                             activation, need_x) -> (grad_x, grad_weight, grad_bias)
      (grad_x is empty unless need_x; grad_weight / grad_bias are empty when absent)

Only x and the (N, C) statistics are saved for the backward: the kernels recompute the
normalised value and the pre-activation from them instead of storing either.
"""

from __future__ import annotations

import torch

from fastgan import _ext, backends, reference
from fastgan.ops._common import like_kernel_output, opmath_dtype

ACTIVATION_CODES = {"identity": 0, "leaky_relu": 1}


def fake_forward(x, weight, bias, eps, negative_slope, activation):
    stats = x.new_empty((x.shape[0], x.shape[1]), dtype=opmath_dtype(x.dtype))
    return like_kernel_output(x), stats, torch.empty_like(stats)


def fake_backward(grad_y, x, weight, bias, mean, rstd, negative_slope, activation, need_x):
    grad_x = like_kernel_output(x) if need_x else x.new_empty((0,))
    grad_w = torch.empty_like(weight) if weight is not None else x.new_empty((0,))
    grad_b = torch.empty_like(bias) if bias is not None else x.new_empty((0,))
    return grad_x, grad_w, grad_b


def register(forward_name: str, backward_op) -> None:
    """Fake kernels and autograd for one implementation of the op pair."""
    torch.library.register_fake(forward_name)(fake_forward)

    def setup_context(ctx, inputs, output):
        x, weight, bias, eps, negative_slope, activation = inputs
        _, mean, rstd = output
        ctx.save_for_backward(x, weight, bias, mean, rstd)
        ctx.args = (negative_slope, activation)
        ctx.mark_non_differentiable(mean, rstd)

    def backward(ctx, grad_y, _grad_mean, _grad_rstd):
        x, weight, bias, mean, rstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if not (need_x or need_w or need_b):
            return None, None, None, None, None, None
        grad_x, grad_w, grad_b = backward_op(grad_y, x, weight, bias, mean, rstd, *ctx.args,
                                             need_x)
        return ((grad_x if need_x else None), (grad_w if need_w else None),
                (grad_b if need_b else None), None, None, None)

    torch.library.register_autograd(forward_name, backward, setup_context=setup_context)


if _ext.HAS_CPU_KERNELS:
    torch.library.register_fake("fastgan::instance_norm_act_backward")(fake_backward)
    register("fastgan::instance_norm_act_forward", torch.ops.fastgan.instance_norm_act_backward)


def instance_norm_act(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                      eps: float, negative_slope: float, activation: int):
    """Run the op on the backend chosen for x's device; inputs are validated. Returns y and
    the (N, C) means (None from the reference), for a cheap look for NaN/Inf."""
    name = backends.resolve(x.device.type, has_triton=True)
    if name == "reference":
        act = "leaky_relu" if activation == ACTIVATION_CODES["leaky_relu"] else "identity"
        return reference.instance_norm_act(x, weight, bias, eps=eps, negative_slope=negative_slope,
                                           activation=act), None
    ops = torch.ops.fastgan_triton if name == "triton" else torch.ops.fastgan
    y, mean, _ = ops.instance_norm_act_forward(x, weight, bias, eps, negative_slope, activation)
    return y, mean
