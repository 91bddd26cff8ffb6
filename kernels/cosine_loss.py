"""Triton kernels of the cosine-similarity loss 1 - cos(w*x, w*y), with
cos = a.b / max(|a| |b|, eps): per image over (C, H, W) (dim 0) or per pixel over C (dim 1).

Images are dense NCHW or NHWC blocks of C*HW elements (fastgan/ops/triton_losses.py
normalises the layout). Per image, programs walk flat elements (order is irrelevant);
per pixel, each program owns BLOCK_P pixels and loops over their channels.
Codes: MASK as in common.mask_weight; REDUCTION 0 = none, 1 = mean, 2 = sum.
"""

import triton
import triton.language as tl

from .common import eps_value, flat_elements, load_xyw, pixel_element, upstream_grad


@triton.jit
def _coef(dot, nx, ny, eps):
    """cos and the coefficients of d cos / d x = w^2 (a y - bx x), d cos / d y = w^2 (a x - by y).
    Where |x|^2 |y|^2 <= eps^2 the norm is clamped at eps and no longer depends on x, y."""
    prod = nx * ny
    big = prod > eps * eps
    s = tl.where(big, tl.sqrt(tl.where(big, prod, 1)), eps)
    cos = dot / s
    a = 1 / s
    bx = tl.where(big, cos / tl.where(big, nx, 1), 0)
    by = tl.where(big, cos / tl.where(big, ny, 1), 0)
    return cos, a, bx, by


@triton.jit
def _dcos(g_ptr, g_stride, img, N, per_image, REDUCTION: tl.constexpr, acc_ty: tl.constexpr):
    """d loss / d cos for one cosine of image img; per_image cosines make up an image's loss."""
    g = upstream_grad(g_ptr, g_stride, img, REDUCTION, acc_ty)
    if REDUCTION == 0:
        g = g / per_image
    elif REDUCTION == 1:
        g = g / N / per_image
    return -g


@triton.jit
def _accumulate(dot, nx, ny, x, y, w):
    """Adds the w^2-weighted x.y, |x|^2, |y|^2 of one load."""
    w2 = w * w
    return dot + w2 * x * y, nx + w2 * x * x, ny + w2 * y * y


@triton.jit
def _store_grads(gx_ptr, gy_ptr, base, e, ok, x, y, w, dcos, a, bx, by, NEED_X: tl.constexpr,
                 NEED_Y: tl.constexpr):
    """grad_x = dcos w^2 (a y - bx x), grad_y = dcos w^2 (a x - by y) at elements e of the
    image that starts at element base."""
    w2d = dcos * w * w
    if NEED_X:
        tl.store(gx_ptr + base + e, (w2d * (a * y - bx * x)).to(gx_ptr.dtype.element_ty),
                 mask=ok)
    if NEED_Y:
        tl.store(gy_ptr + base + e, (w2d * (a * x - by * y)).to(gy_ptr.dtype.element_ty),
                 mask=ok)


@triton.jit
def _pixel_coef(x_ptr, y_ptr, m_ptr, img, chunk, C, HW, eps_hi, eps_lo, MASK: tl.constexpr,
                NHWC: tl.constexpr, BLOCK_P: tl.constexpr, acc_ty: tl.constexpr):
    """Pixel block chunk of image img: its pixels p, the flags p < HW and the _coef of
    each pixel's w^2-weighted x.y, |x|^2, |y|^2 over the channels."""
    p = chunk * BLOCK_P + tl.arange(0, BLOCK_P)
    ok = p < HW
    base = img.to(tl.int64) * C * HW
    dot = tl.zeros(p.shape, dtype=acc_ty)
    nx = tl.zeros(p.shape, dtype=acc_ty)
    ny = tl.zeros(p.shape, dtype=acc_ty)
    for ch in range(C):
        e = pixel_element(p, ch, C, HW, NHWC)
        x, y, w = load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK, NHWC, acc_ty)
        dot, nx, ny = _accumulate(dot, nx, ny, x, y, w)
    cos, a, bx, by = _coef(dot, nx, ny, eps_value(eps_hi, eps_lo, acc_ty))
    return p, ok, cos, a, bx, by


@triton.jit
def cosine_image_fwd_kernel(x_ptr, y_ptr, m_ptr, part_ptr, C, HW, MASK: tl.constexpr,
                            NHWC: tl.constexpr, BLOCK: tl.constexpr, ITERS: tl.constexpr):
    """part[i, k, :] = w^2-weighted x.y, |x|^2, |y|^2 over flat chunk k of image i."""
    img = tl.program_id(0)
    chunk = tl.program_id(1)
    acc_ty = part_ptr.dtype.element_ty
    numel = C * HW
    base = img.to(tl.int64) * numel
    dot = tl.zeros([BLOCK], dtype=acc_ty)
    nx = tl.zeros([BLOCK], dtype=acc_ty)
    ny = tl.zeros([BLOCK], dtype=acc_ty)
    for it in range(ITERS):
        e, ok = flat_elements(chunk, it, numel, BLOCK, ITERS)
        x, y, w = load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK, NHWC, acc_ty)
        dot, nx, ny = _accumulate(dot, nx, ny, x, y, w)
    out = (img * tl.num_programs(1) + chunk) * 3
    tl.store(part_ptr + out, tl.sum(dot, axis=0))
    tl.store(part_ptr + out + 1, tl.sum(nx, axis=0))
    tl.store(part_ptr + out + 2, tl.sum(ny, axis=0))


@triton.jit
def cosine_pixel_fwd_kernel(x_ptr, y_ptr, m_ptr, part_ptr, C, HW, eps_hi, eps_lo,
                            MASK: tl.constexpr, NHWC: tl.constexpr, BLOCK_P: tl.constexpr):
    """part[i, k] = sum of 1 - cos over pixel block k of image i."""
    img = tl.program_id(0)
    chunk = tl.program_id(1)
    acc_ty = part_ptr.dtype.element_ty
    p, ok, cos, a, bx, by = _pixel_coef(x_ptr, y_ptr, m_ptr, img, chunk, C, HW, eps_hi, eps_lo,
                                        MASK, NHWC, BLOCK_P, acc_ty)
    loss = tl.where(ok, 1 - cos, 0)
    tl.store(part_ptr + img * tl.num_programs(1) + chunk, tl.sum(loss, axis=0))


@triton.jit
def cosine_image_bwd_kernel(gx_ptr, gy_ptr, g_ptr, g_stride, stats_ptr, x_ptr, y_ptr, m_ptr,
                            N, C, HW, eps_hi, eps_lo, MASK: tl.constexpr, NHWC: tl.constexpr,
                            REDUCTION: tl.constexpr, NEED_X: tl.constexpr,
                            NEED_Y: tl.constexpr, BLOCK: tl.constexpr, ITERS: tl.constexpr):
    """Per image: coefficients from stats[i] = (x.y, |x|^2, |y|^2), then one elementwise pass."""
    img = tl.program_id(0)
    chunk = tl.program_id(1)
    acc_ty = stats_ptr.dtype.element_ty
    dot = tl.load(stats_ptr + img * 3)
    nx = tl.load(stats_ptr + img * 3 + 1)
    ny = tl.load(stats_ptr + img * 3 + 2)
    cos, a, bx, by = _coef(dot, nx, ny, eps_value(eps_hi, eps_lo, acc_ty))
    dcos = _dcos(g_ptr, g_stride, img, N, 1, REDUCTION, acc_ty)
    numel = C * HW
    base = img.to(tl.int64) * numel
    for it in range(ITERS):
        e, ok = flat_elements(chunk, it, numel, BLOCK, ITERS)
        x, y, w = load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK, NHWC, acc_ty)
        _store_grads(gx_ptr, gy_ptr, base, e, ok, x, y, w, dcos, a, bx, by, NEED_X, NEED_Y)


@triton.jit
def cosine_pixel_bwd_kernel(gx_ptr, gy_ptr, g_ptr, g_stride, stats_ptr, x_ptr, y_ptr, m_ptr,
                            N, C, HW, eps_hi, eps_lo, MASK: tl.constexpr, NHWC: tl.constexpr,
                            REDUCTION: tl.constexpr, NEED_X: tl.constexpr,
                            NEED_Y: tl.constexpr, BLOCK_P: tl.constexpr):
    """Per pixel: recompute the pixels' dot products (C values each, cheaper than storing
    a map in the forward), then write the gradients channel by channel. stats is the
    forward's empty stats tensor; only its dtype (the accumulation dtype) is used."""
    img = tl.program_id(0)
    chunk = tl.program_id(1)
    acc_ty = stats_ptr.dtype.element_ty
    p, ok, cos, a, bx, by = _pixel_coef(x_ptr, y_ptr, m_ptr, img, chunk, C, HW, eps_hi, eps_lo,
                                        MASK, NHWC, BLOCK_P, acc_ty)
    dcos = _dcos(g_ptr, g_stride, img, N, HW, REDUCTION, acc_ty)
    base = img.to(tl.int64) * C * HW
    for ch in range(C):
        e = pixel_element(p, ch, C, HW, NHWC)
        x, y, w = load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK, NHWC, acc_ty)
        _store_grads(gx_ptr, gy_ptr, base, e, ok, x, y, w, dcos, a, bx, by, NEED_X, NEED_Y)
