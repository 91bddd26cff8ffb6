"""Procedural synthetic faces: a deterministic, vectorised renderer of simple face images.

>>> from fastgan.data.synthetic import render_faces
>>> images, landmarks = render_faces(16, size=128, seed=0)   # (16, 3, 128, 128) in [0, 1], (16, 5, 2)

Every image is drawn from 48 uniforms (``draw_params``): head shape (width, height, jaw taper,
tilt, position), skin tone (light to very dark, redness), lighting (direction, strength,
ambient) with Lambertian shading of the head as an ellipsoid, background (two-colour gradient
with a vignette), hair (colour, length, volume, hairline, bald), ears, neck and clothes, eyes
(size, spacing, opening, iris colour, gaze, lids), brows (thickness, height, arch), nose
(length, width: side shadow, tip highlight, nostrils), mouth (width, smile, lips) and stubble.
All of it is batched tensor arithmetic on the chosen device, anti-aliased by one-pixel soft
edges, at any size. No randomness enters after the parameters, so the same seed gives the same
pixels, and image i does not depend on how many images are drawn (the parameters are one
(n, 48) uniform draw, filled row by row).

Faces are placed like CelebA's aligned faces after the centre square crop (eyes at 51.5 % of
the height, 22 % of the width apart, mouth at 74.5 %), so ``occlusion.MEAN_LANDMARKS`` fits them
too; their exact landmarks come back with the images in the same normalised (x, y) convention.
"""

from __future__ import annotations

import math

import torch

N_PARAMS = 48

SKIN_TONES = ((0.98, 0.85, 0.76), (0.92, 0.72, 0.60), (0.80, 0.58, 0.43), (0.62, 0.42, 0.30),
              (0.42, 0.28, 0.20), (0.28, 0.18, 0.13))
HAIR_COLOURS = ((0.08, 0.06, 0.05), (0.22, 0.14, 0.09), (0.42, 0.27, 0.15), (0.75, 0.60, 0.38),
                (0.55, 0.24, 0.11), (0.62, 0.62, 0.63), (0.92, 0.86, 0.70))
IRIS_COLOURS = ((0.30, 0.18, 0.09), (0.16, 0.10, 0.06), (0.30, 0.48, 0.68), (0.32, 0.46, 0.30),
                (0.46, 0.52, 0.58))


def draw_params(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 48) uniforms, the whole description of n faces; row i is the same for any n."""
    if n < 0:
        raise ValueError(f"render_faces: n must be >= 0, got {n}")
    return torch.rand(n, N_PARAMS, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float64).float()


def _lerp(u, lo, hi):
    return lo + (hi - lo) * u


def _palette(table, u: torch.Tensor, smooth: bool) -> torch.Tensor:
    """(n, 3) colours: pick from table (smooth: interpolate along it) by uniforms u (n,)."""
    t = torch.tensor(table, dtype=torch.float32, device=u.device)
    if not smooth:
        return t[(u * len(table)).long().clamp_max(len(table) - 1)]
    pos = u * (len(table) - 1)
    i = pos.floor().long().clamp_max(len(table) - 2)
    f = (pos - i).unsqueeze(1)
    return t[i] * (1 - f) + t[i + 1] * f


def _hsv(h, s, v) -> torch.Tensor:
    h = h * 6
    k = torch.stack([(5 + h) % 6, (3 + h) % 6, (1 + h) % 6], dim=1)
    return v[:, None] * (1 - s[:, None] * torch.minimum(k, 4 - k).clamp(0, 1))


def render(params: torch.Tensor, size: int = 128, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render faces from ``params`` (n, 48) uniforms: ``(images, landmarks)``, images
    (n, 3, size, size) float32 in [0, 1] and landmarks (n, 5, 2) normalised (x, y)."""
    if params.dim() != 2 or params.shape[1] != N_PARAMS:
        raise ValueError(f"render: params must have shape (n, {N_PARAMS}), got {tuple(params.shape)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"render: size must be an int >= 8, got {size!r}")
    device = params.device if device is None else torch.device(device)
    p = params.to(device=device, dtype=torch.float32)
    n, S = p.shape[0], size
    if n == 0:
        return torch.zeros(0, 3, S, S, device=device), torch.zeros(0, 5, 2, device=device)
    col = lambda k: p[:, k].view(n, 1, 1, 1)  # noqa: E731  one parameter per image, broadcastable
    rng = lambda k, lo, hi: _lerp(col(k), lo, hi)  # noqa: E731
    c3 = lambda t: t.view(n, 3, 1, 1)  # noqa: E731
    px = 1.0 / S  # one pixel in normalised units
    coords = (torch.arange(S, device=device, dtype=torch.float32) + 0.5) / S
    gy, gx = coords.view(1, 1, S, 1), coords.view(1, 1, 1, S)

    # ---- head frame: centre, tilt; every feature is placed in (X, Y) around the centre
    eye_y = rng(1, 0.49, 0.54)
    cx, cy = rng(0, 0.47, 0.53), eye_y + 0.085
    roll = rng(5, -0.1, 0.1)
    cos, sin = torch.cos(roll), torch.sin(roll)
    dx, dy = gx - cx, gy - cy
    X, Y = cos * dx + sin * dy, -sin * dx + cos * dy
    a, b = rng(2, 0.205, 0.255), rng(3, 0.3, 0.345)
    taper = rng(4, 0.05, 0.3)

    def soft(inside_dist):  # signed distance (positive inside, normalised units) -> alpha
        return (inside_dist / px + 0.5).clamp(0, 1)

    def ellipse(cxe, cye, ax, ay):
        r = torch.sqrt(((X - cxe) / ax) ** 2 + ((Y - cye) / ay) ** 2 + 1e-12)
        return soft((1 - r) * torch.minimum(torch.as_tensor(ax), torch.as_tensor(ay)))

    def over(img, colour, alpha):
        return img + (colour - img) * alpha

    # ---- background: two-colour gradient and a vignette
    bg1 = _hsv(p[:, 11], _lerp(p[:, 12], 0.0, 0.5), _lerp(p[:, 13], 0.25, 0.95))
    bg2 = _hsv(p[:, 14], _lerp(p[:, 15], 0.0, 0.5), _lerp(p[:, 16], 0.15, 0.9))
    ang = col(17) * 2 * math.pi
    t = ((gx - 0.5) * torch.cos(ang) + (gy - 0.5) * torch.sin(ang)) * 0.9 + 0.5
    img = c3(bg1) * (1 - t) + c3(bg2) * t
    img = img * (1 - 0.25 * ((gx - 0.5) ** 2 + (gy - 0.5) ** 2))

    # ---- colours
    skin = _palette(SKIN_TONES, p[:, 6], smooth=True)
    skin = skin * torch.stack([1 + 0.06 * p[:, 7], 1 - 0.03 * p[:, 7], 1 - 0.05 * p[:, 7]], dim=1)
    skin = c3(skin.clamp(0, 1))
    hair = _palette(HAIR_COLOURS, p[:, 18], smooth=False) * _lerp(p[:, 19], 0.8, 1.15).unsqueeze(1)
    hair = c3(hair.clamp(0, 1))
    clothes = c3(_hsv(p[:, 37], _lerp(p[:, 38], 0.0, 0.8), _lerp(p[:, 39], 0.1, 0.9)))

    # ---- lighting: the head as an ellipsoid lit from one side, from above
    la = rng(8, -0.9, 0.9) * math.pi / 2 - math.pi / 2   # mostly from above
    strength = rng(9, 0.3, 0.9)
    lx, ly, lz = torch.cos(la) * strength, torch.sin(la) * strength * 0.6, torch.ones_like(la)
    lnorm = torch.sqrt(lx * lx + ly * ly + lz * lz)
    ambient = rng(10, 0.35, 0.6)

    def shade(nx, ny):
        nz = torch.sqrt((1 - nx * nx - ny * ny).clamp_min(0))
        diffuse = ((nx * lx + ny * ly + nz * lz) / lnorm).clamp_min(0)
        return ambient + (1 - ambient) * diffuse * 1.15

    # ---- hair behind the head (length: short to shoulder-long), with strands
    bald = col(40) < 0.08
    long_hair = rng(20, -0.05, 0.45)
    volume = rng(21, 0.015, 0.06)
    hx, hy = a + volume, b + volume * 0.8
    back = ellipse(0.0, -0.02, hx, hy)
    below = soft(torch.minimum(hx * 0.98 - X.abs(), torch.minimum(long_hair - Y, Y + 0.02)))
    back = torch.maximum(back, below * (long_hair > 0.02).float())
    strands = 1 + 0.07 * torch.sin(X * 220 + 6 * torch.sin(Y * 25)) + 0.05 * torch.sin(X * 97 + Y * 13)
    hair_px = (hair * strands).clamp(0, 1)
    img = over(img, hair_px * 0.8, back * (~bald).float())

    # ---- neck and clothes
    neck_w = rng(45, 0.085, 0.12)
    neck = soft(torch.minimum(neck_w - X.abs(), torch.minimum(Y - 0.15, 0.75 - Y)))
    img = over(img, skin * 0.72, neck)
    body = torch.sqrt((dx / 0.46) ** 2 + ((gy - (cy + b + 0.22)) / 0.2) ** 2)
    shoulders = soft((1 - body) * 0.2)
    img = over(img, clothes * (1 - 0.2 * (dx / 0.46).abs()), shoulders)

    # ---- ears, then the head
    ear_y = rng(42, -0.07, -0.03)
    for side in (-1, 1):
        ear = ellipse(side * a * 0.97, ear_y, rng(42, 0.022, 0.032), rng(42, 0.045, 0.06))
        img = over(img, skin * 0.8, ear)
    aw = a * (1 - taper * (Y / b).clamp(0, 1) ** 2)
    nx, ny = X / aw, Y / b
    r = torch.sqrt(nx * nx + ny * ny + 1e-12)
    head = soft((1 - r) * aw)
    face_shade = shade(nx.clamp(-1, 1) * 0.95, ny.clamp(-1, 1) * 0.95)
    face = skin * face_shade
    # cheeks: a warm blush
    for side in (-1, 1):
        blush = torch.exp(-(((X - side * 0.11) / 0.05) ** 2 + ((Y - 0.05) / 0.04) ** 2)) * rng(43, 0.0, 0.15)
        face = face + (c3(torch.tensor([0.85, 0.35, 0.35], device=device).expand(n, 3)) - face) * blush
    img = over(img, face.clamp(0, 1), head)

    # ---- stubble: a grainy shadow over jaw and upper lip, fading in below the nose
    stubble = (col(41) < 0.2).float() * rng(41, 0.5, 1.0) * 0.4
    fade = ((Y - (eye_y - cy + 0.14)) / 0.05).clamp(0, 1) * ((1 - r) / 0.04).clamp(0, 1)
    grain = 0.75 + 0.25 * torch.sin(X * 530) * torch.sin(Y * 470 + X * 90)
    img = over(img, hair * 0.5 + skin * 0.5, fade * grain * stubble * head)

    # ---- eyes
    d = rng(24, 0.2, 0.24)
    ey = eye_y - cy
    ew = rng(23, 0.036, 0.05)
    eh = ew * rng(44, 0.35, 0.55)
    iris_c = c3(_palette(IRIS_COLOURS, p[:, 25], smooth=False))
    gaze_x, gaze_y = rng(26, -0.3, 0.3) * ew, rng(27, -0.15, 0.15) * eh
    lid = c3(torch.tensor([0.12, 0.08, 0.07], device=device).expand(n, 3))
    for side in (-1, 1):
        ex = side * d / 2
        socket = ellipse(ex, ey - 0.004, ew * 1.5, eh * 2.2)  # a soft shadow around the eye
        img = over(img, img * 0.85, socket * 0.6 * head)
        white = ellipse(ex, ey, ew, eh)
        sclera = c3(torch.tensor([0.94, 0.92, 0.9], device=device).expand(n, 3))
        img = over(img, sclera * face_shade.clamp(0.6, 1.0), white)
        ir = eh * 1.05
        iris = ellipse(ex + gaze_x, ey + gaze_y, ir, ir) * white
        img = over(img, iris_c, iris)
        pupil = ellipse(ex + gaze_x, ey + gaze_y, ir * 0.45, ir * 0.45) * white
        img = over(img, lid * 0.5, pupil)
        glint = ellipse(ex + gaze_x - ir * 0.3, ey + gaze_y - ir * 0.35, ir * 0.22, ir * 0.22) * white
        img = over(img, torch.ones_like(iris_c), glint * 0.9)
        # upper lid and lashes: a dark arc along the top of the eye
        rr = torch.sqrt(((X - ex) / ew) ** 2 + ((Y - ey) / eh) ** 2 + 1e-12)
        upper = soft(torch.minimum((rr - 0.92) * eh, (1.22 - rr) * eh)) * (Y < ey + eh * 0.2).float()
        img = over(img, lid, upper)

        # ---- brows: a tapered arc above the eye
        bw = ew * rng(30, 1.3, 1.6)
        bh = rng(29, 0.035, 0.055)
        arch = rng(30, 0.004, 0.016)
        thick = rng(28, 0.006, 0.014)
        u = (X - ex) / bw * side  # -1 inner end, +1 outer end
        curve = ey - bh - arch * (1 - (u - 0.15) ** 2)
        half_t = thick * (1 - 0.45 * (u + 1) / 2)
        brow = soft(torch.minimum(half_t - (Y - curve).abs(), (1 - u.abs()) * bw))
        img = over(img, hair * 0.75, brow * 0.9)

    # ---- nose
    nose_y = ey + rng(31, 0.11, 0.14)
    nw = rng(32, 0.022, 0.034)
    light_side = torch.sign(lx + 1e-6)
    ridge = torch.exp(-((X + light_side * nw * 0.7) / (nw * 0.6)) ** 2) \
        * soft(torch.minimum(Y - (ey + 0.02), nose_y - Y)) * ((Y - ey) / (nose_y - ey)).clamp(0.3, 1) * 0.2
    img = img * (1 - ridge)
    under = ellipse(0.0, nose_y + 0.012, nw * 1.25, 0.01)
    img = over(img, img * 0.78, under * 0.7)
    tip = ellipse(0.0, nose_y - 0.004, nw * 0.55, nw * 0.45)
    img = over(img, (img * 1.12).clamp(0, 1), tip * 0.6)
    for side in (-1, 1):
        nostril = ellipse(side * nw * 0.55, nose_y + 0.01, nw * 0.32, 0.0065)
        img = over(img, skin * 0.35, nostril)

    # ---- mouth
    mouth_y = ey + 0.23
    mw = rng(33, 0.08, 0.11)
    smile = rng(34, -0.006, 0.02)
    lips = rng(35, 0.016, 0.028)
    lip_c = (skin * 0.55 + c3(torch.tensor([0.72, 0.28, 0.30], device=device).expand(n, 3)) * 0.45)
    lip_c = lip_c * rng(36, 0.8, 1.05)
    q = (X / mw).clamp(-1, 1)
    line = _lip_line(mouth_y, smile, q)  # corners up for a smile (smile > 0)
    width_ok = (1 - (X / mw).abs()) * mw
    shape = (1 - q * q).clamp_min(0)
    upper_lip = soft(torch.minimum(width_ok, torch.minimum(line - Y, Y - (line - lips * 0.8 * shape - 0.002))))
    lower_lip = soft(torch.minimum(width_ok, torch.minimum(Y - line, line + lips * 1.1 * shape + 0.002 - Y)))
    img = over(img, lip_c * face_shade, torch.maximum(upper_lip, lower_lip))
    seam = soft(torch.minimum(width_ok + 0.002, 0.0018 - (Y - line).abs()))
    img = over(img, lid * 0.8, seam)

    # ---- hair over the forehead (hairline dips at the temples)
    hairline = -b * rng(22, 0.5, 0.72) + 0.2 * (X / a).abs() ** 4
    cap = ellipse(0.0, -0.025, a + volume * 0.8, b + volume * 0.5)
    front = cap * soft(hairline - Y) * (~bald).float()
    img = over(img, hair_px, front)

    img = img.clamp(0, 1)

    # ---- landmarks: eye centres, nose tip, mouth corners, back to image coordinates
    zero = torch.zeros_like(ey)
    local = torch.stack([
        torch.stack([-d / 2, ey], -1), torch.stack([d / 2, ey], -1),
        torch.stack([zero, nose_y], -1),
        torch.stack([-mw * 0.95, _lip_line(mouth_y, smile, 0.95)], -1),
        torch.stack([mw * 0.95, _lip_line(mouth_y, smile, 0.95)], -1),
    ], dim=1).view(n, 5, 2)
    c, s = cos.view(n, 1), sin.view(n, 1)
    lxs, lys = local[..., 0], local[..., 1]
    landmarks = torch.stack([cx.view(n, 1) + c * lxs - s * lys, cy.view(n, 1) + s * lxs + c * lys], dim=-1)
    return img.contiguous(), landmarks


def _lip_line(mouth_y, smile, q):
    """The line between the lips at x = q * half mouth width (q in [-1, 1])."""
    return mouth_y - smile * q * q + smile * 0.5


def render_faces(n: int, size: int = 128, seed: int = 0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic faces: ``(images (n, 3, size, size) float in [0, 1], landmarks (n, 5, 2))``."""
    return render(draw_params(n, seed), size, device=device)
