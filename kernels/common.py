"""Triton helpers shared by the loss kernels."""

import triton
import triton.language as tl


@triton.jit
def mask_weight(m_ptr, img, e, ok, C, HW, MASK: tl.constexpr, NHWC: tl.constexpr,
                acc_ty: tl.constexpr):
    """Mask weight of the flat elements e (offsets in x's layout) of image img:
    1 without a mask (MASK 0), 0 where ok is false. MASK 1: (N, 1, H, W) contiguous,
    broadcast over channels; MASK 2: (N, C, H, W) laid out as x."""
    if MASK == 0:
        w = ok.to(acc_ty)
    elif MASK == 1:
        # Broadcast over channels: find each element's pixel in x's layout.
        if NHWC:
            p = e // C
        else:
            p = e % HW
        w = tl.load(m_ptr + img.to(tl.int64) * HW + p, mask=ok, other=0).to(acc_ty)
    else:
        w = tl.load(m_ptr + img.to(tl.int64) * C * HW + e, mask=ok, other=0).to(acc_ty)
    return w


@triton.jit
def flat_elements(chunk, it, numel, BLOCK: tl.constexpr, ITERS: tl.constexpr):
    """Step it of a flat program: program chunk owns BLOCK * ITERS consecutive elements
    of its image. Returns the BLOCK element offsets e and the in-range flags e < numel."""
    e = (chunk * ITERS + it) * BLOCK + tl.arange(0, BLOCK)
    return e, e < numel


@triton.jit
def pixel_element(p, ch, C, HW, NHWC: tl.constexpr):
    """Offset in x's layout of channel ch of pixels p."""
    if NHWC:
        e = p * C + ch
    else:
        e = ch * HW + p
    return e


@triton.jit
def load_xyw(x_ptr, y_ptr, m_ptr, img, base, e, ok, C, HW, MASK: tl.constexpr,
             NHWC: tl.constexpr, acc_ty: tl.constexpr):
    """x, y (image img starts at element base) and the mask weight of elements e, in
    acc_ty; 0 where ok is false."""
    x = tl.load(x_ptr + base + e, mask=ok, other=0).to(acc_ty)
    y = tl.load(y_ptr + base + e, mask=ok, other=0).to(acc_ty)
    w = mask_weight(m_ptr, img, e, ok, C, HW, MASK, NHWC, acc_ty)
    return x, y, w


@triton.jit
def eps_value(eps_hi, eps_lo, acc_ty: tl.constexpr):
    # Float arguments reach a kernel as float32, so eps arrives as two float32
    # halves and float64 kernels keep its full precision.
    return tl.cast(eps_hi, acc_ty) + tl.cast(eps_lo, acc_ty)


@triton.jit
def upstream_grad(g_ptr, g_stride, img, REDUCTION: tl.constexpr, acc_ty: tl.constexpr):
    """The incoming gradient of image img: g[img] for reduction none (g may be a
    strided or expanded (N,) view), else the single value of the 0-dim g."""
    if REDUCTION == 0:
        g = tl.load(g_ptr + img * g_stride).to(acc_ty)
    else:
        g = tl.load(g_ptr).to(acc_ty)
    return g
