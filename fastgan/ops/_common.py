"""Helpers shared by the op registrations."""

from __future__ import annotations

import torch

REDUCTION_NAMES = {0: "none", 1: "mean", 2: "sum"}


def opmath_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def like_kernel_output(x: torch.Tensor) -> torch.Tensor:
    """An empty tensor laid out as the kernels lay out a gradient of x: channels_last
    (channels_last_3d for volumes) when x is (and not also plain contiguous), otherwise
    contiguous."""
    last = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    channels_last = x.dim() in (4, 5) and not x.is_contiguous() and x.is_contiguous(memory_format=last)
    fmt = last if channels_last else torch.contiguous_format
    return torch.empty_like(x, memory_format=fmt)


def loss_shape(x: torch.Tensor, reduction: int) -> tuple:
    return (x.shape[0],) if reduction == 0 else ()


def _is_exactly_one(g: torch.Tensor) -> bool:
    """True for an eager CPU scalar equal to 1 (free to read: no device sync). Traced
    tensors (fake, functional) are subclasses and always take the multiply."""
    return type(g) is torch.Tensor and g.device.type == "cpu" and g.numel() == 1 and g.item() == 1


def scale_stored_grad(stored: torch.Tensor, grad_loss: torch.Tensor, reduction: int) -> torch.Tensor:
    """The gradient for upstream ``grad_loss`` from one stored for an upstream of one:
    per image for reduction "none", else one scalar; handed over as is when that is 1."""
    if reduction == 0:
        return stored * grad_loss.to(stored.dtype).view(-1, 1, 1, 1)
    if _is_exactly_one(grad_loss):
        return stored
    return stored * grad_loss.to(stored.dtype)


def wants_fused_grad(x: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether a CPU op should compute its gradient in the forward pass. float16 keeps
    the two-pass path: a stored gradient scaled by 1/numel would underflow into
    float16's subnormals before the upstream gradient is applied."""
    return x.dtype != torch.float16 and torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
