"""Triton kernels of the SSIM family (maths of csrc/common/ssim_common.h).

Two kernels, both over 2-D tiles of one (image, channel) plane, or of one depth slice of
an (image, channel) volume (DWIN = WIN > 1: the window also runs along depth, a third
loop; DWIN = 1 for images, where the depth sizes are 1 and the depth strides 0):

- ``ssim_map_kernel``: for a [BH, BW] tile of output (map) pixels, the four Gaussian
  moments mx, my, ev = G*(x^2 + y^2), exy (and l1 = G*|x - y| for the mix) as a direct
  win x win sum of separable weights g[i] g[j] over shifted 2-D loads (cache hits), then
  the per-pixel value. It writes the tile's sums of w * value and w, and optionally the
  map and the coefficient maps a_k = w dv/dmoment_k that the gradient needs (w: the mask
  times a per-plane upstream factor, or an upstream gradient map).
- ``ssim_grad_kernel``: for a [BH, BW] tile of padded-input pixels q, the transposed
  filter A_k(q) = sum_t g[t] a_k(q - t) of the coefficient maps, then
  d/dx = A_mx + 2 x A_v + y A_xy + sign(x - y) A_l1 (and the mirror for y), written to a
  padded opmath buffer that fastgan/ops/triton_ssim.py folds back into the image.

Coordinates: "padded" rows 0..HP-1 map to image rows row - PAD (zeros or reflection
outside for PADDING 1 / 2), depth slices likewise with DPAD; output pixel p sees padded
pixels p .. p + WIN - 1. Program axis 0 runs over (plane, depth slice) pairs.
Accumulation in the dtype of the partial-sum / coefficient buffers (float32, or float64
for float64 inputs); the window weights come from a tensor in that dtype and the
constants as float32 (hi, lo) pairs so float64 keeps full precision.
"""

import triton
import triton.language as tl


@triton.jit
def _const(hi, lo, acc_ty: tl.constexpr):
    return tl.cast(hi, acc_ty) + tl.cast(lo, acc_ty)


@triton.jit
def _image_index(p, n, PAD: tl.constexpr, PADDING: tl.constexpr):
    """Image index of padded index p and whether it reads the image (zeros otherwise)."""
    i = p - PAD
    if PADDING == 2:
        i = tl.where(i < 0, -i, i)
        i = tl.where(i >= n, 2 * (n - 1) - i, i)
        inside = (i >= 0) & (i < n)
    else:
        inside = (i >= 0) & (i < n)
    return i, inside


@triton.jit
def _and_flag(mask, flag):
    """mask & a scalar flag, broadcast explicitly (the interpreter rejects the implicit form)."""
    return mask & ((mask.to(tl.int32) * 0 + flag.to(tl.int32)) > 0)


@triton.jit
def _load_padded(ptr, base, rows, cols, sh, sw, H, W, ok, PAD: tl.constexpr,
                 PADDING: tl.constexpr, acc_ty: tl.constexpr):
    """Values of the padded image at padded (rows[:, None], cols[None, :])."""
    ri, rin = _image_index(rows, H, PAD, PADDING)
    ci, cin = _image_index(cols, W, PAD, PADDING)
    m = ok & rin[:, None] & cin[None, :]
    offs = base + ri[:, None].to(tl.int64) * sh + ci[None, :].to(tl.int64) * sw
    return tl.load(ptr + offs, mask=m, other=0).to(acc_ty)


@triton.jit
def ssim_map_kernel(x_ptr, y_ptr, m_ptr, gm_ptr, f_ptr, g_ptr, part_ptr, map_ptr, coef_ptr,
                    C, D, H, W, DO, HO, WO, TILES_W,
                    sxn, sxc, sxd, sxh, sxw, syn, syc, syd, syh, syw, smn, smc, smd, smh, smw,
                    sgn, sgc, sgd, sgh, sgw, sfn, sfc,
                    c1_hi, c1_lo, c2_hi, c2_lo, a_hi, a_lo, b_hi, b_lo,
                    WIN: tl.constexpr, PAD: tl.constexpr, PADDING: tl.constexpr,
                    STAT: tl.constexpr, MASK: tl.constexpr, GRAD_MAP: tl.constexpr,
                    FACTOR: tl.constexpr, WRITE_MAP: tl.constexpr, COEF: tl.constexpr,
                    BH: tl.constexpr, BW: tl.constexpr, DWIN: tl.constexpr = 1,
                    DPAD: tl.constexpr = 0):
    slice_id = tl.program_id(0)  # plane * DO + output depth slice
    tile = tl.program_id(1)
    acc_ty = g_ptr.dtype.element_ty
    plane = slice_id // DO
    od = slice_id % DO
    n = plane // C
    c = plane % C
    R: tl.constexpr = WIN // 2
    DR: tl.constexpr = DWIN // 2
    orow = (tile // TILES_W) * BH + tl.arange(0, BH)
    ocol = (tile % TILES_W) * BW + tl.arange(0, BW)
    ok = (orow < HO)[:, None] & (ocol < WO)[None, :]
    xb = n.to(tl.int64) * sxn + c.to(tl.int64) * sxc
    yb = n.to(tl.int64) * syn + c.to(tl.int64) * syc

    mx = tl.zeros([BH, BW], dtype=acc_ty)
    my = tl.zeros([BH, BW], dtype=acc_ty)
    ev = tl.zeros([BH, BW], dtype=acc_ty)
    exy = tl.zeros([BH, BW], dtype=acc_ty)
    l1 = tl.zeros([BH, BW], dtype=acc_ty)
    for dz in range(DWIN):
        zi, zin = _image_index(od + dz, D, DPAD, PADDING)
        zok = _and_flag(ok, zin)
        xz = xb + zi.to(tl.int64) * sxd
        yz = yb + zi.to(tl.int64) * syd
        for i in range(WIN):
            gi = tl.load(g_ptr + i)
            if DWIN > 1:
                gi = gi * tl.load(g_ptr + dz)
            for j in tl.static_range(WIN):
                wgt = gi * tl.load(g_ptr + j)
                xv = _load_padded(x_ptr, xz, orow + i, ocol + j, sxh, sxw, H, W, zok, PAD,
                                  PADDING, acc_ty)
                yv = _load_padded(y_ptr, yz, orow + i, ocol + j, syh, syw, H, W, zok, PAD,
                                  PADDING, acc_ty)
                mx += wgt * xv
                my += wgt * yv
                ev += wgt * (xv * xv + yv * yv)
                exy += wgt * (xv * yv)
                if STAT == 2:
                    l1 += wgt * tl.abs(xv - yv)

    c1 = _const(c1_hi, c1_lo, acc_ty)
    c2 = _const(c2_hi, c2_lo, acc_ty)
    alpha = _const(a_hi, a_lo, acc_ty)
    beta = _const(b_hi, b_lo, acc_ty)
    mx2 = mx * mx
    my2 = my * my
    mxy = mx * my
    a2 = 2 * (exy - mxy) + c2
    b2 = (ev - mx2 - my2) + c2

    # Weights: the mask at each map pixel's window centre (or an upstream map), 0 off the map.
    if GRAD_MAP:
        goffs = (n.to(tl.int64) * sgn + c.to(tl.int64) * sgc + od.to(tl.int64) * sgd
                 + orow[:, None].to(tl.int64) * sgh + ocol[None, :].to(tl.int64) * sgw)
        w = tl.load(gm_ptr + goffs, mask=ok, other=0).to(acc_ty)
    elif MASK:
        moffs = (n.to(tl.int64) * smn + c.to(tl.int64) * smc
                 + (od + DR - DPAD).to(tl.int64) * smd
                 + (orow + R - PAD)[:, None].to(tl.int64) * smh
                 + (ocol + R - PAD)[None, :].to(tl.int64) * smw)
        w = tl.load(m_ptr + moffs, mask=ok, other=0).to(acc_ty)
    else:
        w = ok.to(acc_ty)

    if STAT == 1:
        inv = 1 / b2
        value = a2 * inv
    else:
        a1 = 2 * mxy + c1
        b1 = (mx2 + my2) + c1
        inv = 1 / (b1 * b2)
        s = a1 * a2 * inv
        if STAT == 2:
            value = alpha * (1 - s) + beta * l1
        else:
            value = s
    value = tl.where(ok, value, 0)

    out = slice_id.to(tl.int64) * tl.num_programs(1) + tile
    tl.store(part_ptr + out * 2, tl.sum(tl.sum(w * value, axis=1), axis=0))
    tl.store(part_ptr + out * 2 + 1, tl.sum(tl.sum(w, axis=1), axis=0))
    moff = slice_id.to(tl.int64) * HO * WO + orow[:, None].to(tl.int64) * WO + ocol[None, :]
    if WRITE_MAP:
        tl.store(map_ptr + moff, value.to(map_ptr.dtype.element_ty), mask=ok)
    if COEF:
        cw = w
        if FACTOR:
            cw = w * tl.load(f_ptr + n.to(tl.int64) * sfn + c.to(tl.int64) * sfc).to(acc_ty)
        if STAT == 1:
            s2 = 2 * cw * inv
            d_xy = s2
            d_v = -cw * value * inv
            d_mx = s2 * (mx * value - my)
            d_my = s2 * (my * value - mx)
        else:
            scale = cw
            if STAT == 2:
                scale = -alpha * cw
            s2 = 2 * scale * inv
            t1 = a2 - a1
            t2 = s * (b2 - b1)
            d_xy = s2 * a1
            d_v = -scale * s * b1 * inv
            d_mx = s2 * (my * t1 - mx * t2)
            d_my = s2 * (mx * t1 - my * t2)
        NC: tl.constexpr = 5 if STAT == 2 else 4
        cbase = slice_id.to(tl.int64) * NC * HO * WO
        plane_size = HO * WO
        coff = orow[:, None].to(tl.int64) * WO + ocol[None, :]
        tl.store(coef_ptr + cbase + coff, d_mx, mask=ok)
        tl.store(coef_ptr + cbase + plane_size + coff, d_my, mask=ok)
        tl.store(coef_ptr + cbase + 2 * plane_size + coff, d_v, mask=ok)
        tl.store(coef_ptr + cbase + 3 * plane_size + coff, d_xy, mask=ok)
        if STAT == 2:
            tl.store(coef_ptr + cbase + 4 * plane_size + coff, cw * beta, mask=ok)


@triton.jit
def ssim_grad_kernel(coef_ptr, g_ptr, x_ptr, y_ptr, gx_ptr, gy_ptr,
                     C, D, H, W, DP, HP, WP, DO, HO, WO, TILES_W,
                     sxn, sxc, sxd, sxh, sxw, syn, syc, syd, syh, syw,
                     WIN: tl.constexpr, PAD: tl.constexpr, PADDING: tl.constexpr,
                     MIX: tl.constexpr, NEED_X: tl.constexpr, NEED_Y: tl.constexpr,
                     BH: tl.constexpr, BW: tl.constexpr, DWIN: tl.constexpr = 1,
                     DPAD: tl.constexpr = 0):
    slice_id = tl.program_id(0)  # plane * DP + padded depth slice
    tile = tl.program_id(1)
    acc_ty = coef_ptr.dtype.element_ty
    plane = slice_id // DP
    qd = slice_id % DP
    n = plane // C
    c = plane % C
    qrow = (tile // TILES_W) * BH + tl.arange(0, BH)
    qcol = (tile % TILES_W) * BW + tl.arange(0, BW)
    ok = (qrow < HP)[:, None] & (qcol < WP)[None, :]
    NC: tl.constexpr = 5 if MIX else 4
    plane_size = HO * WO
    a_mx = tl.zeros([BH, BW], dtype=acc_ty)
    a_my = tl.zeros([BH, BW], dtype=acc_ty)
    a_v = tl.zeros([BH, BW], dtype=acc_ty)
    a_xy = tl.zeros([BH, BW], dtype=acc_ty)
    a_l1 = tl.zeros([BH, BW], dtype=acc_ty)
    for dz in range(DWIN):
        od = qd - dz
        dok = (od >= 0) & (od < DO)
        cbase = (plane.to(tl.int64) * DO + od) * NC * plane_size
        for i in range(WIN):
            gi = tl.load(g_ptr + i)
            if DWIN > 1:
                gi = gi * tl.load(g_ptr + dz)
            orow = qrow - i
            rok = _and_flag((orow >= 0) & (orow < HO), dok)
            for j in tl.static_range(WIN):
                wgt = gi * tl.load(g_ptr + j)
                ocol = qcol - j
                m = ok & rok[:, None] & ((ocol >= 0) & (ocol < WO))[None, :]
                off = cbase + orow[:, None].to(tl.int64) * WO + ocol[None, :]
                if NEED_X:
                    a_mx += wgt * tl.load(coef_ptr + off, mask=m, other=0)
                if NEED_Y:
                    a_my += wgt * tl.load(coef_ptr + off + plane_size, mask=m, other=0)
                a_v += wgt * tl.load(coef_ptr + off + 2 * plane_size, mask=m, other=0)
                a_xy += wgt * tl.load(coef_ptr + off + 3 * plane_size, mask=m, other=0)
                if MIX:
                    a_l1 += wgt * tl.load(coef_ptr + off + 4 * plane_size, mask=m, other=0)
    zi, zin = _image_index(qd, D, DPAD, PADDING)
    xb = n.to(tl.int64) * sxn + c.to(tl.int64) * sxc + zi.to(tl.int64) * sxd
    yb = n.to(tl.int64) * syn + c.to(tl.int64) * syc + zi.to(tl.int64) * syd
    zok = _and_flag(ok, zin)
    xv = _load_padded(x_ptr, xb, qrow, qcol, sxh, sxw, H, W, zok, PAD, PADDING, acc_ty)
    yv = _load_padded(y_ptr, yb, qrow, qcol, syh, syw, H, W, zok, PAD, PADDING, acc_ty)
    d = xv - yv
    sgn = (d > 0).to(acc_ty) - (d < 0).to(acc_ty)
    out = slice_id.to(tl.int64) * HP * WP + qrow[:, None].to(tl.int64) * WP + qcol[None, :]
    if NEED_X:
        gx = a_mx + 2 * xv * a_v + yv * a_xy
        if MIX:
            gx += sgn * a_l1
        tl.store(gx_ptr + out, gx, mask=ok)
    if NEED_Y:
        gy = a_my + 2 * yv * a_v + xv * a_xy
        if MIX:
            gy -= sgn * a_l1
        tl.store(gy_ptr + out, gy, mask=ok)
