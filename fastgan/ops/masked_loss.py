"""Masked pointwise losses (L1, squared error, Charbonnier) as custom ops.

Ops (schemas in csrc/registration.cpp, Triton twins in fastgan/ops/triton_losses.py):
  masked_loss_forward(x, y, mask?, kind, eps, reduction) -> (loss, weight_sum)
  masked_loss_backward(grad, x, y, mask?, weight_sum, kind, eps, reduction) -> grad_x
  masked_loss_forward_with_grad(x, y, mask?, kind, eps, reduction) -> (loss, grad_x)  [CPU]

On the CPU, a loss whose inputs need gradients runs forward_with_grad: the forward
writes d loss / d x for an upstream gradient of one, and the backward only scales it
(or hands it over as is when the upstream gradient is exactly one), instead of a second
pass over x and y.
"""

from __future__ import annotations

import torch

from fastgan import _ext, backends, reference
from fastgan.ops._common import (REDUCTION_NAMES, like_kernel_output, loss_shape, opmath_dtype,
                                 scale_stored_grad, wants_fused_grad)

KIND_CODES = {"l1": 0, "mse": 1, "charbonnier": 2}
KIND_NAMES = {v: k for k, v in KIND_CODES.items()}


def fake_forward(x, y, mask, kind, eps, reduction):
    return (x.new_empty(loss_shape(x, reduction)),
            x.new_empty((x.shape[0],), dtype=opmath_dtype(x.dtype)))


def fake_backward(grad, x, y, mask, weight_sum, kind, eps, reduction):
    return like_kernel_output(x)


def register(forward_name: str, backward_op) -> None:
    """Fake kernels and autograd for one implementation of the op pair."""
    torch.library.register_fake(forward_name)(fake_forward)

    def setup_context(ctx, inputs, output):
        x, y, mask, kind, eps, reduction = inputs
        ctx.save_for_backward(x, y, mask, output[1])
        ctx.args = (kind, eps, reduction)
        ctx.mark_non_differentiable(output[1])
        ctx.set_materialize_grads(False)  # no zero-filled gradient for the side output

    def backward(ctx, grad_loss, _grad_weight_sum):
        x, y, mask, weight_sum = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = grad_y = None
        if grad_loss is not None and (need_x or need_y):  # None: the loss got no gradient
            grad_diff = backward_op(grad_loss, x, y, mask, weight_sum, *ctx.args)
            grad_x = grad_diff if need_x else None
            grad_y = -grad_diff if need_y else None
        # The mask is a constant weighting: no gradient flows into it.
        return grad_x, grad_y, None, None, None, None

    torch.library.register_autograd(forward_name, backward, setup_context=setup_context)


def fake_forward_with_grad(x, y, mask, kind, eps, reduction):
    return x.new_empty(loss_shape(x, reduction)), like_kernel_output(x)


def _setup_with_grad(ctx, inputs, output):
    ctx.reduction = inputs[5]
    ctx.save_for_backward(output[1])
    ctx.mark_non_differentiable(output[1])
    # The stored gradient is image-sized: never materialise a zero gradient for it.
    ctx.set_materialize_grads(False)


def _backward_with_grad(ctx, grad_loss, _grad_stored):
    (stored,) = ctx.saved_tensors
    if grad_loss is None:  # the loss got no gradient (grads are not materialised)
        return None, None, None, None, None, None
    grad_x = scale_stored_grad(stored, grad_loss, ctx.reduction)
    grad_y = -grad_x if ctx.needs_input_grad[1] else None
    return (grad_x if ctx.needs_input_grad[0] else None), grad_y, None, None, None, None


if _ext.HAS_CPU_KERNELS:
    torch.library.register_fake("fastgan::masked_loss_backward")(fake_backward)
    register("fastgan::masked_loss_forward", torch.ops.fastgan.masked_loss_backward)
    torch.library.register_fake("fastgan::masked_loss_forward_with_grad")(fake_forward_with_grad)
    torch.library.register_autograd("fastgan::masked_loss_forward_with_grad", _backward_with_grad,
                                    setup_context=_setup_with_grad)

def masked_loss(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, kind: int,
                eps: float, reduction: int) -> torch.Tensor:
    """Run the masked loss on the backend chosen for x's device. Inputs are validated."""
    name = backends.resolve(x.device.type, has_triton=True)
    if name == "reference":
        return reference.masked_loss(x, y, mask, kind=KIND_NAMES[kind], eps=eps,
                                     reduction=REDUCTION_NAMES[reduction])
    if name == "triton":
        return torch.ops.fastgan_triton.masked_loss_forward(x, y, mask, kind, eps, reduction)[0]
    if name == "cpu" and wants_fused_grad(x, y):
        return torch.ops.fastgan.masked_loss_forward_with_grad(x, y, mask, kind, eps, reduction)[0]
    return torch.ops.fastgan.masked_loss_forward(x, y, mask, kind, eps, reduction)[0]
