"""Cosine-similarity loss as custom ops.

Ops (schemas in csrc/registration.cpp, Triton twins in fastgan/ops/triton_losses.py):
  cosine_loss_forward(x, y, mask?, dim, eps, reduction) -> (loss, stats)
  cosine_loss_backward(grad, x, y, mask?, stats, dim, eps, reduction, need_x, need_y)
      -> (grad_x, grad_y)   (an output not asked for is an empty tensor)
  cosine_loss_forward_with_grad(x, y, mask?, dim, eps, reduction, need_x, need_y)
      -> (loss, grad_x, grad_y)   [CPU: per pixel one pass instead of three; per image
                                   each image twice in a row, the second time from cache]
"""

from __future__ import annotations

import torch

from fastgan import _ext, backends, reference
from fastgan.ops._common import (REDUCTION_NAMES, like_kernel_output, loss_shape, opmath_dtype,
                                 scale_stored_grad, wants_fused_grad)


def fake_forward(x, y, mask, dim, eps, reduction):
    stats_shape = (x.shape[0], 3) if dim == 0 else (0,)
    return (x.new_empty(loss_shape(x, reduction)),
            x.new_empty(stats_shape, dtype=opmath_dtype(x.dtype)))


def fake_backward(grad, x, y, mask, stats, dim, eps, reduction, need_x, need_y):
    gx = like_kernel_output(x) if need_x else x.new_empty((0,))
    gy = like_kernel_output(y) if need_y else y.new_empty((0,))
    return gx, gy


def register(forward_name: str, backward_op) -> None:
    """Fake kernels and autograd for one implementation of the op pair."""
    torch.library.register_fake(forward_name)(fake_forward)

    def setup_context(ctx, inputs, output):
        x, y, mask, dim, eps, reduction = inputs
        ctx.save_for_backward(x, y, mask, output[1])
        ctx.args = (dim, eps, reduction)
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the side output

    def backward(ctx, grad_loss, _grad_stats):
        x, y, mask, stats = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if grad_loss is None or not (need_x or need_y):
            return None, None, None, None, None, None
        gx, gy = backward_op(grad_loss, x, y, mask, stats, *ctx.args, need_x, need_y)
        return (gx if need_x else None), (gy if need_y else None), None, None, None, None

    torch.library.register_autograd(forward_name, backward, setup_context=setup_context)


def fake_forward_with_grad(x, y, mask, dim, eps, reduction, need_x, need_y):
    gx, gy = fake_backward(None, x, y, mask, None, dim, eps, reduction, need_x, need_y)
    return x.new_empty(loss_shape(x, reduction)), gx, gy


def _setup_with_grad(ctx, inputs, output):
    ctx.reduction = inputs[5]
    ctx.save_for_backward(output[1], output[2])
    ctx.mark_non_differentiable(output[1], output[2])
    ctx.set_materialize_grads(False)  # the stored gradients are image-sized


def _backward_with_grad(ctx, grad_loss, _gx, _gy):
    stored_x, stored_y = ctx.saved_tensors
    if grad_loss is None:
        return None, None, None, None, None, None, None, None
    need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if (need_x and stored_x.numel() == 0) or (need_y and stored_y.numel() == 0):
        raise RuntimeError("cosine_loss_forward_with_grad: a gradient is needed for an input "
                           "whose need_x/need_y flag was False in the forward")
    grad_x = scale_stored_grad(stored_x, grad_loss, ctx.reduction) if need_x else None
    grad_y = scale_stored_grad(stored_y, grad_loss, ctx.reduction) if need_y else None
    return grad_x, grad_y, None, None, None, None, None, None


if _ext.HAS_CPU_KERNELS:
    torch.library.register_fake("fastgan::cosine_loss_backward")(fake_backward)
    register("fastgan::cosine_loss_forward", torch.ops.fastgan.cosine_loss_backward)
    torch.library.register_fake("fastgan::cosine_loss_forward_with_grad")(fake_forward_with_grad)
    torch.library.register_autograd("fastgan::cosine_loss_forward_with_grad", _backward_with_grad,
                                    setup_context=_setup_with_grad)


def cosine_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, dim: int,
                eps: float, reduction: int) -> torch.Tensor:
    """Run the cosine loss on the backend chosen for x's device. Inputs are validated."""
    name = backends.resolve(x.device.type, has_triton=True)
    if name == "reference":
        return reference.cosine_similarity_loss(x, y, mask, dim=None if dim == 0 else 1, eps=eps,
                                                reduction=REDUCTION_NAMES[reduction])
    if name == "triton":
        return torch.ops.fastgan_triton.cosine_loss_forward(x, y, mask, dim, eps, reduction)[0]
    if name == "cpu" and wants_fused_grad(x, y):
        return torch.ops.fastgan.cosine_loss_forward_with_grad(
            x, y, mask, dim, eps, reduction, x.requires_grad, y.requires_grad)[0]
    return torch.ops.fastgan.cosine_loss_forward(x, y, mask, dim, eps, reduction)[0]
