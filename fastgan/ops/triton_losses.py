"""Triton implementations of the loss ops, as ``torch.ops.fastgan_triton.*``.

Same schemas and semantics as the C++ ops (csrc/registration.cpp, csrc/cpu/). Each op is
a ``torch.library.triton_op``: its body normalises the layout, launches kernels from
``fastgan.kernels`` through ``wrap_triton`` and finishes the tiny per-(image, chunk)
partial sums with torch ops. Nothing reads device data on the host, so torch.compile
traces the body and CUDA graphs can capture it. Fake kernels and autograd come from the
shared ``register()`` of each op family.
"""

import importlib
import importlib.util
import struct
import sys
from pathlib import Path
from typing import Optional

import torch
import triton
from torch import Tensor
from torch.library import triton_op, wrap_triton

# (fastgan.ops re-exports functions named like these modules: import the names directly.)
from fastgan.ops.cosine_loss import fake_backward as cosine_fake_backward
from fastgan.ops.cosine_loss import register as register_cosine
from fastgan.ops.masked_loss import fake_backward as masked_fake_backward
from fastgan.ops.masked_loss import register as register_masked
from fastgan.ops._common import opmath_dtype


def _import_kernels():
    try:
        return importlib.import_module("fastgan.kernels")
    except ModuleNotFoundError as exc:
        if exc.name != "fastgan.kernels":
            raise
    # An editable install made before kernels/ existed does not map fastgan.kernels;
    # load it from the source tree, where kernels/ sits next to fastgan/.
    root = Path(__file__).resolve().parents[2] / "kernels"
    spec = importlib.util.spec_from_file_location(
        "fastgan.kernels", root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_import_kernels()
# Kernels imported by name: torch finds a triton_op's kernels (for its compile caches)
# only in calls written as wrap_triton(name).
from fastgan.kernels.cosine_loss import (  # noqa: E402
    cosine_image_bwd_kernel,
    cosine_image_fwd_kernel,
    cosine_pixel_bwd_kernel,
    cosine_pixel_fwd_kernel,
)
from fastgan.kernels.masked_loss import masked_loss_bwd_kernel, masked_loss_fwd_kernel  # noqa: E402

# Flat kernels: each program handles BLOCK * ITERS elements of one image (4096, like the
# CPU kernels' tasks), so the partials stay tiny. Per-pixel cosine: BLOCK_P pixels each.
BLOCK, ITERS = 1024, 4
CHUNK = BLOCK * ITERS
BLOCK_P = 256


def _layout(x: Tensor, y: Tensor, mask: Optional[Tensor]):
    """As prepare_images (csrc/common/loss_common.h): NHWC when x is channels_last and not
    also contiguous, else NCHW; copies only inputs in neither dense layout. Returns
    (x, y, mask pointer, mask code, nhwc, memory format); x stands in for a missing mask."""
    torch._check(x.dim() == 4 and x.shape == y.shape and x.dtype == y.dtype,
                 lambda: f"x and y must be 4-D of one shape and dtype, got {x.shape}, {y.shape}")
    nhwc = (not x.is_contiguous()) and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    x, y = x.contiguous(memory_format=fmt), y.contiguous(memory_format=fmt)
    if mask is None:
        return x, y, x, 0, nhwc, fmt
    n, c, h, w = x.shape
    torch._check(mask.dim() == 4 and mask.shape[0] == n and mask.shape[1] in (1, c)
                 and mask.shape[2:] == x.shape[2:] and mask.dtype == x.dtype,
                 lambda: f"mask must be (N, 1, H, W) or (N, C, H, W) like x, got {mask.shape}")
    if mask.shape[1] == 1 and c != 1:
        return x, y, mask.contiguous(), 1, nhwc, fmt
    return x, y, mask.contiguous(memory_format=fmt), 2, nhwc, fmt


def _eps_parts(eps: float):
    # Float kernel arguments are float32: pass eps as two float32 halves (hi + lo) so
    # that float64 kernels see it at full precision.
    eps = float(eps)
    hi = struct.unpack("f", struct.pack("f", eps))[0]
    return hi, eps - hi


def _grad_stride(grad: Tensor) -> int:
    # A (N,) upstream gradient may be an expanded view (stride 0), e.g. from loss.sum().
    return grad.stride(0) if grad.dim() == 1 else 0


def _safe_ratio(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), 0)


def _check_reduction(reduction: int) -> None:
    torch._check(reduction in (0, 1, 2),
                 lambda: f"reduction code must be 0, 1 or 2, got {reduction}")


@triton_op("fastgan_triton::masked_loss_forward", mutates_args=())
def masked_loss_forward(x: Tensor, y: Tensor, mask: Optional[Tensor], kind: int, eps: float,
                        reduction: int) -> tuple[Tensor, Tensor]:
    _check_reduction(reduction)
    torch._check(kind in (0, 1, 2), lambda: f"kind code must be 0, 1 or 2, got {kind}")
    dtype = x.dtype
    x, y, m, mode, nhwc, _ = _layout(x, y, mask)
    n, c, h, w = x.shape
    chunks = triton.cdiv(c * h * w, CHUNK)
    num = x.new_empty((n, chunks), dtype=opmath_dtype(dtype))
    den = torch.empty_like(num)
    wrap_triton(masked_loss_fwd_kernel)[(n, chunks)](
        x, y, m, num, den, c, h * w, *_eps_parts(eps),
        KIND=kind, MASK=mode, NHWC=nhwc, BLOCK=BLOCK, ITERS=ITERS)
    num, weight_sum = num.sum(1), den.sum(1)
    if reduction == 0:
        loss = _safe_ratio(num, weight_sum)
    elif reduction == 1:
        loss = _safe_ratio(num.sum(), weight_sum.sum())
    else:
        loss = num.sum()
    return loss.to(dtype), weight_sum


@triton_op("fastgan_triton::masked_loss_backward", mutates_args=())
def masked_loss_backward(grad: Tensor, x: Tensor, y: Tensor, mask: Optional[Tensor],
                         weight_sum: Tensor, kind: int, eps: float, reduction: int) -> Tensor:
    _check_reduction(reduction)
    x, y, m, mode, nhwc, fmt = _layout(x, y, mask)
    n, c, h, w = x.shape
    grad_x = torch.empty_like(x, memory_format=fmt)
    weight_sum = weight_sum.to(opmath_dtype(x.dtype)).contiguous()
    wrap_triton(masked_loss_bwd_kernel)[(n, triton.cdiv(c * h * w, CHUNK))](
        grad_x, grad, _grad_stride(grad), weight_sum, x, y, m, n, c, h * w, *_eps_parts(eps),
        KIND=kind, MASK=mode, NHWC=nhwc, REDUCTION=reduction, BLOCK=BLOCK, ITERS=ITERS)
    return grad_x


@triton_op("fastgan_triton::cosine_loss_forward", mutates_args=())
def cosine_loss_forward(x: Tensor, y: Tensor, mask: Optional[Tensor], dim: int, eps: float,
                        reduction: int) -> tuple[Tensor, Tensor]:
    _check_reduction(reduction)
    torch._check(dim in (0, 1),
                 lambda: f"dim code must be 0 (per image) or 1 (per pixel), got {dim}")
    dtype, acc = x.dtype, opmath_dtype(x.dtype)
    x, y, m, mode, nhwc, _ = _layout(x, y, mask)
    n, c, h, w = x.shape
    if dim == 0:
        chunks = triton.cdiv(c * h * w, CHUNK)
        part = x.new_empty((n, chunks, 3), dtype=acc)
        wrap_triton(cosine_image_fwd_kernel)[(n, chunks)](
            x, y, m, part, c, h * w, MASK=mode, NHWC=nhwc, BLOCK=BLOCK, ITERS=ITERS)
        stats = part.sum(1)  # (N, 3): x.y, |x|^2, |y|^2
        dot, nx, ny = stats.unbind(1)
        # max(|x| |y|, eps) == sqrt(max(|x|^2 |y|^2, eps^2))
        per_image = 1 - dot / torch.sqrt(torch.clamp_min(nx * ny, eps * eps))
        pixels = 1
    else:
        chunks = triton.cdiv(h * w, BLOCK_P)
        part = x.new_empty((n, chunks), dtype=acc)
        wrap_triton(cosine_pixel_fwd_kernel)[(n, chunks)](
            x, y, m, part, c, h * w, *_eps_parts(eps), MASK=mode, NHWC=nhwc, BLOCK_P=BLOCK_P)
        per_image = part.sum(1)  # sum of per-pixel losses
        stats = x.new_empty((0,), dtype=acc)
        pixels = h * w
    if reduction == 0:
        loss = per_image / pixels  # per pixel, `none` is the per-image mean over pixels
    elif reduction == 1:
        loss = per_image.sum() / (n * pixels)
    else:
        loss = per_image.sum()
    return loss.to(dtype), stats


@triton_op("fastgan_triton::cosine_loss_backward", mutates_args=())
def cosine_loss_backward(grad: Tensor, x: Tensor, y: Tensor, mask: Optional[Tensor],
                         stats: Tensor, dim: int, eps: float, reduction: int, need_x: bool,
                         need_y: bool) -> tuple[Tensor, Tensor]:
    _check_reduction(reduction)
    x, y, m, mode, nhwc, fmt = _layout(x, y, mask)
    n, c, h, w = x.shape
    grad_x = torch.empty_like(x, memory_format=fmt) if need_x else x.new_empty((0,))
    grad_y = torch.empty_like(y, memory_format=fmt) if need_y else y.new_empty((0,))
    # Per pixel, stats is empty and only passes the accumulation dtype to the kernel.
    stats = stats.to(opmath_dtype(x.dtype)).contiguous()
    args = (grad_x, grad_y, grad, _grad_stride(grad), stats, x, y, m, n, c, h * w,
            *_eps_parts(eps))
    flags = dict(MASK=mode, NHWC=nhwc, REDUCTION=reduction, NEED_X=need_x, NEED_Y=need_y)
    if not (need_x or need_y):
        return grad_x, grad_y
    if dim == 0:
        wrap_triton(cosine_image_bwd_kernel)[(n, triton.cdiv(c * h * w, CHUNK))](
            *args, **flags, BLOCK=BLOCK, ITERS=ITERS)
    else:
        wrap_triton(cosine_pixel_bwd_kernel)[(n, triton.cdiv(h * w, BLOCK_P))](
            *args, **flags, BLOCK_P=BLOCK_P)
    return grad_x, grad_y


torch.library.register_fake("fastgan_triton::masked_loss_backward")(masked_fake_backward)
register_masked("fastgan_triton::masked_loss_forward", masked_loss_backward)
torch.library.register_fake("fastgan_triton::cosine_loss_backward")(cosine_fake_backward)
register_cosine("fastgan_triton::cosine_loss_forward", cosine_loss_backward)
