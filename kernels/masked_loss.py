"""Triton kernels of the masked pointwise losses (L1, squared error, Charbonnier).

Images are dense NCHW or NHWC blocks of C*HW elements (fastgan/ops/triton_losses.py
normalises the layout). Grid (N, chunks): program (i, k) handles the flat elements
[k*CHUNK, (k+1)*CHUNK) of image i, CHUNK = BLOCK * ITERS; element order does not
matter here, so one flat loop serves both layouts.
Codes: KIND 0 = L1, 1 = squared, 2 = Charbonnier; MASK as in common.mask_weight;
REDUCTION 0 = none, 1 = mean, 2 = sum. Accumulation runs in the dtype of the
partial / weight-sum tensor: float32, or float64 for float64 inputs.
"""

import triton
import triton.language as tl

from .common import eps_value, flat_elements, load_xyw, upstream_grad


@triton.jit
def _error(d, eps2, KIND: tl.constexpr):
    if KIND == 0:
        r = tl.abs(d)
    elif KIND == 1:
        r = d * d
    else:
        r = tl.sqrt(d * d + eps2)
    return r


@triton.jit
def _error_grad(d, eps2, KIND: tl.constexpr):
    # L1 uses sign(d) with sign(0) = 0, as torch.abs does.
    if KIND == 0:
        r = (d > 0).to(d.dtype) - (d < 0).to(d.dtype)
    elif KIND == 1:
        r = 2 * d
    else:
        r = d / tl.sqrt(d * d + eps2)
    return r


@triton.jit
def _safe_div(num, den):
    """num / den, and 0 where den is 0 (nothing weighted)."""
    return tl.where(den > 0, num / tl.where(den > 0, den, 1), 0)


@triton.jit
def masked_loss_fwd_kernel(x_ptr, y_ptr, m_ptr, num_ptr, den_ptr, C, HW, eps_hi, eps_lo,
                           KIND: tl.constexpr, MASK: tl.constexpr, NHWC: tl.constexpr,
                           BLOCK: tl.constexpr, ITERS: tl.constexpr):
    """num[i, k] = sum of w * e(x - y) and den[i, k] = sum of w over chunk k of image i."""
    img = tl.program_id(0)
    chunk = tl.program_id(1)
    acc_ty = num_ptr.dtype.element_ty
    eps = eps_value(eps_hi, eps_lo, acc_ty)
    numel = C * HW
    base = img.to(tl.int64) * numel
    num = tl.zeros([BLOCK], dtype=acc_ty)
    den = tl.zeros([BLOCK], dtype=acc_ty)
    for it in range(ITERS):
        e, ok = flat_elements(chunk, it, numel, BLOCK, ITERS)
        x, y, w = load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK, NHWC, acc_ty)
        num += w * _error(x - y, eps * eps, KIND)
        den += w
    out = img * tl.num_programs(1) + chunk
    tl.store(num_ptr + out, tl.sum(num, axis=0))
    tl.store(den_ptr + out, tl.sum(den, axis=0))


@triton.jit
def masked_loss_bwd_kernel(gx_ptr, g_ptr, g_stride, ws_ptr, x_ptr, y_ptr, m_ptr, N, C, HW,
                           eps_hi, eps_lo, KIND: tl.constexpr, MASK: tl.constexpr,
                           NHWC: tl.constexpr, REDUCTION: tl.constexpr, BLOCK: tl.constexpr,
                           ITERS: tl.constexpr):
    """grad_x = s_i * w * e'(x - y) over chunk k of image i, where s_i = d loss / d (w e)
    is g_i / weight_sum_i (none), g / sum of weight_sum (mean) or g (sum), and 0 where
    the weights sum to 0; g and weight_sum are read here, on the device."""
    img = tl.program_id(0)
    chunk = tl.program_id(1)
    acc_ty = ws_ptr.dtype.element_ty
    eps = eps_value(eps_hi, eps_lo, acc_ty)
    g = upstream_grad(g_ptr, g_stride, img, REDUCTION, acc_ty)
    if REDUCTION == 0:
        scale = _safe_div(g, tl.load(ws_ptr + img).to(acc_ty))
    elif REDUCTION == 1:
        # Every program re-sums the N weight sums: N is a batch size, cheaper than a launch.
        total = tl.zeros([128], dtype=acc_ty)
        for start in range(0, N, 128):
            i = start + tl.arange(0, 128)
            total += tl.load(ws_ptr + i, mask=i < N, other=0).to(acc_ty)
        scale = _safe_div(g, tl.sum(total, axis=0))
    else:
        scale = g
    numel = C * HW
    base = img.to(tl.int64) * numel
    for it in range(ITERS):
        e, ok = flat_elements(chunk, it, numel, BLOCK, ITERS)
        x, y, w = load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK, NHWC, acc_ty)
        gx = scale * w * _error_grad(x - y, eps * eps, KIND)
        tl.store(gx_ptr + base + e, gx.to(gx_ptr.dtype.element_ty), mask=ok)
