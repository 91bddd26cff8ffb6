"""Triton kernels of InstanceNorm + activation (fastgan/ops/triton_norm.py launches them).

Grid (N, cdiv(C, BLOCK_C)): program (n, k) owns channels [k*BLOCK_C, (k+1)*BLOCK_C) of
image n over all H*W pixels, in [BLOCK_P, BLOCK_C] tiles. NHWC (channels contiguous) uses
BLOCK_C > 1; NCHW uses BLOCK_C = 1 and long pixel rows. Each program reads its planes
several times: the first read comes from memory, the rest from L2 while they are hot.

  forward:  mean (pass 1), centred sum of squares (pass 2), y = act(a (x - mean) + beta)
            (pass 3), a = gamma * rstd;
  backward: S1 = sum g, S2 = sum g (x - mean) with g = act'(z) dy and z recomputed from x
            (pass 1), then dx = a g + B (x - mean) + C0 (pass 2), B = -a rstd^2 S2 / HW,
            C0 = -a S1 / HW; the program also writes S1 and rstd S2 for d beta and d gamma.
ACT: 0 identity, 1 leaky ReLU (slope 0: ReLU). Accumulation in the dtype of the mean
tensor: float32, or float64 for float64 inputs.
"""

import triton
import triton.language as tl

from .common import eps_value


@triton.jit
def _activation(z, slope, ACT: tl.constexpr):
    if ACT == 1:
        z = tl.where(z > 0, z, z * slope)
    return z


@triton.jit
def _activation_grad(z, g, slope, ACT: tl.constexpr):
    # At z == 0 the slope applies, as in torch's leaky_relu_backward.
    if ACT == 1:
        g = tl.where(z > 0, g, g * slope)
    return g


@triton.jit
def _tile(p0, cb, C, HW, NHWC: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Offsets (within one image) and mask of pixel rows [p0, p0 + BLOCK_P) x channel block cb."""
    p = p0 + tl.arange(0, BLOCK_P)
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    ok = (p < HW)[:, None] & (c < C)[None, :]
    if NHWC:
        off = p[:, None].to(tl.int64) * C + c[None, :]
    else:
        off = c[None, :].to(tl.int64) * HW + p[:, None]
    return off, ok


@triton.jit
def _channel_params(w_ptr, b_ptr, cb, C, acc_ty: tl.constexpr, HAS_W: tl.constexpr,
                    HAS_B: tl.constexpr, BLOCK_C: tl.constexpr):
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    gamma = tl.full([BLOCK_C], 1, acc_ty)
    beta = tl.zeros([BLOCK_C], acc_ty)
    if HAS_W:
        gamma = tl.load(w_ptr + c, mask=c < C, other=1).to(acc_ty)
    if HAS_B:
        beta = tl.load(b_ptr + c, mask=c < C, other=0).to(acc_ty)
    return gamma, beta


@triton.jit
def norm_act_fwd_kernel(x_ptr, y_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, C, HW, eps_hi, eps_lo,
                        slope_hi, slope_lo, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                        ACT: tl.constexpr, NHWC: tl.constexpr, BLOCK_P: tl.constexpr,
                        BLOCK_C: tl.constexpr):
    n = tl.program_id(0)
    cb = tl.program_id(1)
    acc_ty = mean_ptr.dtype.element_ty
    base = n.to(tl.int64) * C * HW
    x_img = x_ptr + base
    acc = tl.zeros([BLOCK_P, BLOCK_C], acc_ty)
    for p0 in range(0, HW, BLOCK_P):
        off, ok = _tile(p0, cb, C, HW, NHWC, BLOCK_P, BLOCK_C)
        acc += tl.load(x_img + off, mask=ok, other=0).to(acc_ty)
    mean = tl.sum(acc, axis=0) / HW
    acc = tl.zeros([BLOCK_P, BLOCK_C], acc_ty)
    for p0 in range(0, HW, BLOCK_P):
        off, ok = _tile(p0, cb, C, HW, NHWC, BLOCK_P, BLOCK_C)
        d = tl.where(ok, tl.load(x_img + off, mask=ok, other=0).to(acc_ty) - mean[None, :], 0)
        acc += d * d
    var = tl.sum(acc, axis=0) / HW
    rstd = 1 / tl.sqrt(var + eps_value(eps_hi, eps_lo, acc_ty))
    gamma, beta = _channel_params(w_ptr, b_ptr, cb, C, acc_ty, HAS_W, HAS_B, BLOCK_C)
    a = gamma * rstd
    slope = eps_value(slope_hi, slope_lo, acc_ty)
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    tl.store(mean_ptr + n * C + c, mean, mask=c < C)
    tl.store(rstd_ptr + n * C + c, rstd, mask=c < C)
    for p0 in range(0, HW, BLOCK_P):
        off, ok = _tile(p0, cb, C, HW, NHWC, BLOCK_P, BLOCK_C)
        xv = tl.load(x_img + off, mask=ok, other=0).to(acc_ty)
        z = a[None, :] * (xv - mean[None, :]) + beta[None, :]
        y = _activation(z, slope, ACT)
        tl.store(y_ptr + base + off, y.to(y_ptr.dtype.element_ty), mask=ok)


@triton.jit
def norm_act_bwd_kernel(dy_ptr, x_ptr, dx_ptr, w_ptr, b_ptr, mean_ptr, rstd_ptr, s1_ptr, s2_ptr,
                        C, HW, slope_hi, slope_lo, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
                        ACT: tl.constexpr, NHWC: tl.constexpr, NEED_X: tl.constexpr,
                        BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    n = tl.program_id(0)
    cb = tl.program_id(1)
    acc_ty = s1_ptr.dtype.element_ty
    base = n.to(tl.int64) * C * HW
    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = c < C
    mean = tl.load(mean_ptr + n * C + c, mask=c_ok, other=0).to(acc_ty)
    rstd = tl.load(rstd_ptr + n * C + c, mask=c_ok, other=0).to(acc_ty)
    gamma, beta = _channel_params(w_ptr, b_ptr, cb, C, acc_ty, HAS_W, HAS_B, BLOCK_C)
    a = gamma * rstd
    slope = eps_value(slope_hi, slope_lo, acc_ty)
    acc1 = tl.zeros([BLOCK_P, BLOCK_C], acc_ty)
    acc2 = tl.zeros([BLOCK_P, BLOCK_C], acc_ty)
    for p0 in range(0, HW, BLOCK_P):
        off, ok = _tile(p0, cb, C, HW, NHWC, BLOCK_P, BLOCK_C)
        v = tl.load(x_ptr + base + off, mask=ok, other=0).to(acc_ty) - mean[None, :]
        dy = tl.load(dy_ptr + base + off, mask=ok, other=0).to(acc_ty)
        g = _activation_grad(a[None, :] * v + beta[None, :], dy, slope, ACT)
        acc1 += g
        acc2 += tl.where(ok, g * v, 0)
    s1 = tl.sum(acc1, axis=0)
    s2 = tl.sum(acc2, axis=0)
    tl.store(s1_ptr + n * C + c, s1, mask=c_ok)
    tl.store(s2_ptr + n * C + c, rstd * s2, mask=c_ok)
    if NEED_X:
        coef_b = -a * rstd * rstd * s2 / HW
        coef_c = -a * s1 / HW
        for p0 in range(0, HW, BLOCK_P):
            off, ok = _tile(p0, cb, C, HW, NHWC, BLOCK_P, BLOCK_C)
            v = tl.load(x_ptr + base + off, mask=ok, other=0).to(acc_ty) - mean[None, :]
            dy = tl.load(dy_ptr + base + off, mask=ok, other=0).to(acc_ty)
            g = _activation_grad(a[None, :] * v + beta[None, :], dy, slope, ACT)
            dx = a[None, :] * g + (coef_b[None, :] * v + coef_c[None, :])
            tl.store(dx_ptr + base + off, dx.to(dx_ptr.dtype.element_ty), mask=ok)
