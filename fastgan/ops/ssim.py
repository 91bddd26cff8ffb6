"""The SSIM family as custom ops: per-plane sums and the per-pixel map.

Ops (schemas in csrc/registration.cpp, Triton twins in fastgan/ops/triton_ssim.py):
  ssim_forward(x, y, mask?, window_size, sigma, k1, k2, data_range, padding, stat, alpha)
      -> (sums, weights): per (image, channel) plane, sum_p w_p v_p and sum_p w_p, (N, C)
  ssim_backward(grad, x, y, mask?, ..., need_x, need_y) -> (grad_x, grad_y)
  ssim_forward_with_grad(x, y, mask?, ..., need_x, need_y, grad_scale)
      -> (sums, weights, gx, gy): gradients for grad = grad_scale on every plane  [CPU]
  ssim_map_forward(x, y, ...) -> map (N, C, H', W');  ssim_map_backward(grad, x, y, ...)

Every op takes (N, C, H, W) images or (N, C, D, H, W) volumes (the window along all three
axes); "plane" below means an (image, channel) plane or an (image, channel) volume.

The ops return per-plane sums so that every reduction (mean, per image, sum, the ReLU
of nonnegative SSIM, MS-SSIM's products over scales) is a few torch ops on (N, C)
tensors, differentiated by autograd, while the kernels only ever see one upstream
factor per plane. On the CPU, a call whose inputs need gradients runs
forward_with_grad: one sweep over the images gives the sums and the gradients for a
factor of ``grad_scale``, and the backward rescales them per plane (no second pass over
x and y); when the upstream gradient is exactly grad_scale everywhere (the public
functions pass the 1/count of a plain mean, so ``fg.ssim(x, y).backward()`` or
``(1 - fg.ssim(x, y)).backward()`` hit it), it returns them as they are: no pass at all.
"""

from __future__ import annotations

import torch

from fastgan import _ext, backends, reference
from fastgan.ops._common import like_kernel_output, opmath_dtype

PADDING_CODES = {"valid": 0, "same": 1, "reflect": 2}
PADDING_NAMES = {v: k for k, v in PADDING_CODES.items()}
STAT_CODES = {"ssim": 0, "cs": 1, "mix": 2}
STAT_NAMES = {v: k for k, v in STAT_CODES.items()}


def map_shape(x: torch.Tensor, window_size: int, padding: int) -> tuple[int, ...]:
    """(N, C, H', W') for images, (N, C, D', H', W') for volumes."""
    shrink = 2 * (window_size // 2) if padding == 0 else 0
    return (*x.shape[:2], *(s - shrink for s in x.shape[2:]))


def _grad_like(x: torch.Tensor, needed: bool) -> torch.Tensor:
    return like_kernel_output(x) if needed else x.new_empty((0,))


def fake_forward(x, y, mask, window_size, sigma, k1, k2, data_range, padding, stat, alpha):
    acc = opmath_dtype(x.dtype)
    return (x.new_empty(x.shape[:2], dtype=acc), x.new_empty(x.shape[:2], dtype=acc))


def fake_backward(grad, x, y, mask, window_size, sigma, k1, k2, data_range, padding, stat, alpha,
                  need_x, need_y):
    return _grad_like(x, need_x), _grad_like(x, need_y)


def fake_forward_with_grad(x, y, mask, window_size, sigma, k1, k2, data_range, padding, stat,
                           alpha, need_x, need_y, grad_scale):
    sums, weights = fake_forward(x, y, mask, window_size, sigma, k1, k2, data_range, padding, stat,
                                 alpha)
    return sums, weights, _grad_like(x, need_x), _grad_like(x, need_y)


def fake_map_forward(x, y, window_size, sigma, k1, k2, data_range, padding, stat, alpha):
    return x.new_empty(map_shape(x, window_size, padding))


def fake_map_backward(grad, x, y, window_size, sigma, k1, k2, data_range, padding, stat, alpha,
                      need_x, need_y):
    return _grad_like(x, need_x), _grad_like(x, need_y)


def register(forward_name: str, backward_op) -> None:
    """Fake kernel and autograd of one implementation of ssim_forward."""
    torch.library.register_fake(forward_name)(fake_forward)

    def setup_context(ctx, inputs, output):
        x, y, mask, *args = inputs
        ctx.save_for_backward(x, y, mask)
        ctx.args = tuple(args)
        ctx.mark_non_differentiable(output[1])

    def backward(ctx, grad_sums, _grad_weights):
        x, y, mask = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_y):
            return (None,) * 11
        gx, gy = backward_op(grad_sums, x, y, mask, *ctx.args, need_x, need_y)
        # The mask is a constant weighting: no gradient flows into it.
        return (gx if need_x else None), (gy if need_y else None), *(None,) * 9

    torch.library.register_autograd(forward_name, backward, setup_context=setup_context)


def register_map(forward_name: str, backward_op) -> None:
    """Fake kernel and autograd of one implementation of ssim_map_forward."""
    torch.library.register_fake(forward_name)(fake_map_forward)

    def setup_context(ctx, inputs, output):
        x, y, *args = inputs
        ctx.save_for_backward(x, y)
        ctx.args = tuple(args)

    def backward(ctx, grad_map):
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_x or need_y):
            return (None,) * 10
        gx, gy = backward_op(grad_map, x, y, *ctx.args, need_x, need_y)
        return (gx if need_x else None), (gy if need_y else None), *(None,) * 8

    torch.library.register_autograd(forward_name, backward, setup_context=setup_context)


def _setup_with_grad(ctx, inputs, output):
    ctx.grad_scale = inputs[-1]
    ctx.save_for_backward(output[2], output[3])
    ctx.mark_non_differentiable(*output[1:])
    # No zero-filled image-sized gradients for the stored-gradient outputs.
    ctx.set_materialize_grads(False)


def _is_exactly(g: torch.Tensor, value: float) -> bool:
    """True for an eager CPU tensor equal to value everywhere (free to read: (N, C) on the
    host). Traced tensors (fake, functional) are subclasses and always take the multiply."""
    return type(g) is torch.Tensor and g.device.type == "cpu" and bool((g == value).all())


def _scale(stored: torch.Tensor, grad_sums: torch.Tensor, grad_scale: float) -> torch.Tensor:
    factor = (grad_sums.to(opmath_dtype(stored.dtype)) / grad_scale).view(
        *grad_sums.shape, *[1] * (stored.dim() - 2))
    if stored.dtype in (torch.float32, torch.float64):
        return stored * factor
    return (stored.to(factor.dtype) * factor).to(stored.dtype)


def _backward_with_grad(ctx, grad_sums, _gw, _gx, _gy):
    gx, gy = ctx.saved_tensors
    if grad_sums is None:
        return (None,) * 14
    if _is_exactly(grad_sums, ctx.grad_scale):
        grad_x, grad_y = gx, gy
    else:
        grad_x = _scale(gx, grad_sums, ctx.grad_scale) if ctx.needs_input_grad[0] else None
        grad_y = _scale(gy, grad_sums, ctx.grad_scale) if ctx.needs_input_grad[1] else None
    return (grad_x if ctx.needs_input_grad[0] else None), (
        grad_y if ctx.needs_input_grad[1] else None), *(None,) * 12


if _ext.HAS_CPU_KERNELS:
    torch.library.register_fake("fastgan::ssim_backward")(fake_backward)
    register("fastgan::ssim_forward", torch.ops.fastgan.ssim_backward)
    torch.library.register_fake("fastgan::ssim_forward_with_grad")(fake_forward_with_grad)
    torch.library.register_autograd("fastgan::ssim_forward_with_grad", _backward_with_grad,
                                    setup_context=_setup_with_grad)
    torch.library.register_fake("fastgan::ssim_map_backward")(fake_map_backward)
    register_map("fastgan::ssim_map_forward", torch.ops.fastgan.ssim_map_backward)


def ssim_sums(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None, window_size: int,
              sigma: float, k1: float, k2: float, data_range: float, padding: int, stat: int,
              alpha: float = 0.0, grad_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-plane (sum_p w_p v_p, sum_p w_p) on the backend chosen for x's device.
    Inputs are validated; padding and stat are integer codes. grad_scale: the upstream
    gradient of the sums expected in training (a hint; any gradient is handled)."""
    args = (window_size, float(sigma), float(k1), float(k2), float(data_range), padding, stat,
            float(alpha))
    name = backends.resolve(x.device.type, has_triton=True)
    if name == "reference":
        return reference.ssim_plane_sums(
            x, y, mask, data_range=data_range, window_size=window_size, sigma=sigma, k1=k1, k2=k2,
            padding=PADDING_NAMES[padding], stat=STAT_NAMES[stat], alpha=alpha)
    if name == "triton":
        return torch.ops.fastgan_triton.ssim_forward(x, y, mask, *args)
    if name == "cpu" and torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
        # float16 stores unit-scale gradients: pre-scaled by 1/count they would sink into
        # float16's subnormals (and an AMP loss scale applied later could not recover them).
        scale = 1.0 if x.dtype == torch.float16 else float(grad_scale)
        out = torch.ops.fastgan.ssim_forward_with_grad(x, y, mask, *args, x.requires_grad,
                                                       y.requires_grad, scale)
        return out[0], out[1]
    return torch.ops.fastgan.ssim_forward(x, y, mask, *args)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window_size: int, sigma: float, k1: float,
             k2: float, data_range: float, padding: int, stat: int = 0,
             alpha: float = 0.0) -> torch.Tensor:
    """The per-pixel map of stat, (N, C, H', W') in x's dtype. Inputs are validated."""
    args = (window_size, float(sigma), float(k1), float(k2), float(data_range), padding, stat,
            float(alpha))
    name = backends.resolve(x.device.type, has_triton=True)
    if name == "reference":
        return reference.ssim_stat_map(
            x, y, data_range=data_range, window_size=window_size, sigma=sigma, k1=k1, k2=k2,
            padding=PADDING_NAMES[padding], stat=STAT_NAMES[stat], alpha=alpha).to(x.dtype)
    if name == "triton":
        return torch.ops.fastgan_triton.ssim_map_forward(x, y, *args)
    return torch.ops.fastgan.ssim_map_forward(x, y, *args)
