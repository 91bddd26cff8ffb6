"""Helpers shared by the op registrations."""

from __future__ import annotations

import torch

REDUCTION_NAMES = {0: "none", 1: "mean", 2: "sum"}


def opmath_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def like_kernel_output(x: torch.Tensor) -> torch.Tensor:
    """An empty tensor laid out as the kernels lay out a gradient of x: channels_last
    when x is channels_last (and not also plain contiguous), otherwise contiguous."""
    channels_last = (not x.is_contiguous()) and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return torch.empty_like(x, memory_format=fmt)


def loss_shape(x: torch.Tensor, reduction: int) -> tuple:
    return (x.shape[0],) if reduction == 0 else ()
