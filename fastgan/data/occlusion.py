"""Synthetic occlusions of face images, each returning the occluded image AND its binary mask.

>>> from fastgan.data.occlusion import occlude, make_occluder
>>> occluded, mask = occlude(images, "nose-mask", seed=0)        # images: (N, C, H, W)
>>> occluder = make_occluder("square", size=0.3, fill="constant", value=0.5)
>>> occluded, mask = occluder(images, generator=torch.Generator().manual_seed(0))

Images are (N, C, H, W) with C = 1 or 3, float in [0, 1] (any float dtype) or uint8 in
[0, 255], on any device; all work is batched tensor ops on that device. ``occluded`` has the
images' dtype; ``mask`` is (N, 1, H, W) of the same dtype holding exactly 0 or 1
(1 = occluded), and ``occluded`` equals the input wherever ``mask`` is 0.

Kinds:

- ``nose-mask``: a medical face mask over nose, mouth and chin: a polygon in a face-local frame
  anchored to the landmarks (nose bridge to chin, cheek to cheek), with random rotation
  (+-10 degrees), scale (0.9-1.1), shift, shape, colour (surgical blue, white, black, grey, pink,
  navy, teal, or any colour) and texture (plain, pleats, fabric, printed dots), shaded.
- ``blur``: Gaussian blur (sigma 2-5 % of the image side) over a random ellipse inside the face.
- ``partial``: part of the face (the face ellipse cut by a random line) covered by a solid
  shaded colour or noise.
- ``full``: the whole face ellipse (enlarged 0-15 %) covered by a solid shaded colour or noise.
- ``square``: a square of a configurable side (default 25-50 % of the image side) at a random
  position inside the image, filled with uniform noise or a constant.
- ``strokes``: 1-4 free-form brush strokes (random walks of 3-6 segments, round caps), anywhere
  in the central part of the image, filled with a constant (white) or noise.
- ``mix``: a weighted choice of the kinds above, per image (default weights in ``MIX_WEIGHTS``).

Face geometry: ``landmarks`` are (N, 5, 2) or (5, 2) normalised (x, y) points (left eye, right
eye, nose tip, left and right mouth corner), x = (column + 0.5) / W. Without them every kind uses
``MEAN_LANDMARKS``, the mean landmarks of CelebA's aligned faces after the centre square crop
(``img_align_celeba`` 178x218 -> the 178x178 centre, or 89x109 -> 89x89), which is where the face
of an aligned image is. The face region is an ellipse in the frame the landmarks define
(``face_region``).

Determinism: all random parameters are drawn from one CPU ``torch.Generator`` (``generator=``
or ``seed=``; neither: the global RNG), a fixed number per image, so the same seed gives the same
masks on every device, and (except for ``mix``, whose choice splits the batch) image i's mask
does not depend on the batch size. Per-pixel noise
(noise fills, fabric texture) comes from a generator on the images' device seeded from that
generator: the same on every run of one device.

Coverage (fraction of the image, and of the face ellipse, covered by the mask) of each kind with
its defaults, measured on 2,000 images of 128x128 at ``MEAN_LANDMARKS`` (``coverage_stats``;
tests/test_data_occlusion.py checks these ranges on fresh draws):

==========  ======================  ======================
kind        image: mean (min-max)   face: mean (min-max)
==========  ======================  ======================
nose-mask   0.141 (0.100-0.192)     0.517 (0.398-0.607)
blur        0.138 (0.063-0.233)     0.550 (0.253-0.928)
partial     0.147 (0.085-0.208)     0.482 (0.261-0.705)
full        0.291 (0.251-0.331)     1.000 (1.000-1.000)
square      0.146 (0.062-0.250)     0.293 (0.000-0.838)
strokes     0.064 (0.006-0.164)     0.096 (0.000-0.384)
mix         0.132 (0.007-0.331)     0.405 (0.000-1.000)
==========  ======================  ======================

The face ellipse covers 25.1 % of the image at ``MEAN_LANDMARKS``; ``square`` and ``strokes``
are placed by image position, not by the face, so their face coverage varies more.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

SINGLE_KINDS = ("nose-mask", "blur", "partial", "full", "square", "strokes")
KINDS = (*SINGLE_KINDS, "mix")   # mix: a blend of the single kinds

# CelebA aligned-face mean landmarks in pixels of the 178x218 img_align_celeba frame
# (left eye, right eye, nose tip, left mouth corner, right mouth corner), pixel centres at
# integers; checked against the mean of the 9,000 89x109 test faces.
CELEBA_MEAN_LANDMARKS_PX = ((69.6, 111.2), (108.5, 111.2), (88.6, 133.3), (72.6, 152.1), (105.9, 152.1))


def _celeba_mean_landmarks() -> torch.Tensor:
    # the centre 178x178 square of the 178x218 frame starts 20 rows down
    pts = torch.tensor(CELEBA_MEAN_LANDMARKS_PX, dtype=torch.float32)
    return (pts + 0.5 - torch.tensor([0.0, 20.0])) / 178.0


#: Mean landmarks of aligned faces, normalised to the centre square crop, (5, 2).
MEAN_LANDMARKS = _celeba_mean_landmarks()

# The face ellipse in the face-local frame: u across (eye distance units, 0 = between the eyes),
# v down (eye-to-mouth distance units, 0 = eye line, 1 = mouth).
FACE_CENTER_V = 0.38
FACE_AXES = (1.08, 1.47)

MIX_WEIGHTS = {"nose-mask": 0.3, "blur": 0.1, "partial": 0.15, "full": 0.05, "square": 0.2, "strokes": 0.2}

# Documented coverage per kind: (image mean, min, max), (face mean, min, max). See the docstring.
COVERAGE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "nose-mask": ((0.141, 0.1, 0.192), (0.517, 0.398, 0.607)),
    "blur": ((0.138, 0.063, 0.233), (0.55, 0.253, 0.928)),
    "partial": ((0.147, 0.085, 0.208), (0.482, 0.261, 0.705)),
    "full": ((0.291, 0.251, 0.331), (1.0, 1.0, 1.0)),
    "square": ((0.146, 0.0625, 0.25), (0.293, 0.0, 0.838)),
    "strokes": ((0.064, 0.006, 0.164), (0.096, 0.0, 0.384)),
    "mix": ((0.132, 0.007, 0.331), (0.405, 0.0, 1.0)),
}

# Mask colours (RGB in [0, 1]): surgical blue, white, black, grey, pink, navy, teal, light green.
MASK_COLOURS = ((0.56, 0.76, 0.90), (0.94, 0.94, 0.94), (0.12, 0.12, 0.13), (0.55, 0.56, 0.60),
                (0.95, 0.72, 0.78), (0.16, 0.22, 0.40), (0.36, 0.66, 0.66), (0.62, 0.80, 0.66))


# --------------------------------------------------------------------------- input checks

def _check_images(op: str, images) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{op}: images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"{op}: images must be 4-D (N, C, H, W), got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError(f"{op}: images is an empty batch (N = 0)")
    if c not in (1, 3):
        raise ValueError(f"{op}: images must have 1 or 3 channels, got shape {tuple(images.shape)}")
    if h < 8 or w < 8:
        raise ValueError(f"{op}: images must be at least 8x8, got {h}x{w}")
    if not (images.dtype.is_floating_point or images.dtype == torch.uint8):
        raise TypeError(f"{op}: images must be floating point in [0, 1] or uint8, got {images.dtype}")


def _landmarks_for(op: str, landmarks, n: int, device) -> torch.Tensor:
    if landmarks is None:
        landmarks = MEAN_LANDMARKS
    if not isinstance(landmarks, torch.Tensor):
        landmarks = torch.as_tensor(landmarks, dtype=torch.float32)
    if landmarks.dim() == 2:
        landmarks = landmarks.unsqueeze(0)
    if landmarks.dim() != 3 or landmarks.shape[1:] != (5, 2) or landmarks.shape[0] not in (1, n):
        raise ValueError(f"{op}: landmarks must have shape (5, 2) or (N, 5, 2) = ({n}, 5, 2), "
                         f"got {tuple(landmarks.shape)}")
    if not landmarks.dtype.is_floating_point:
        raise TypeError(f"{op}: landmarks must be floating point (normalised x, y), got {landmarks.dtype}")
    return landmarks.to(device=device, dtype=torch.float32).expand(n, 5, 2)


def _make_generator(generator, seed) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError("occlude: give generator or seed, not both")
    if seed is not None:
        return torch.Generator().manual_seed(int(seed))
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"occlude: generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _uniform(g: torch.Generator | None, n: int, p: int) -> torch.Tensor:
    """(n, p) uniforms from g on its device (CPU for a seed), moved later where needed."""
    dev = g.device if g is not None else "cpu"
    return torch.rand(n, p, generator=g, device=dev).cpu()


def _pixel_generator(g: torch.Generator | None, device: torch.device) -> torch.Generator:
    dev = g.device if g is not None else "cpu"
    seed = int(torch.randint(0, 2**62, (1,), generator=g, device=dev))
    return torch.Generator(device=device).manual_seed(seed)


def _lerp(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * u


# --------------------------------------------------------------------------- face frame

class FaceFrame:
    """The face-local frame of each image, in pixels: origin between the eyes, ``ex`` along
    the eye line (one unit = the eye distance ``d``), ``ey`` down (one unit = the eye-to-mouth
    distance ``m``)."""

    def __init__(self, landmarks: torch.Tensor, h: int, w: int):
        px = landmarks * torch.tensor([w, h], device=landmarks.device, dtype=torch.float32) - 0.5
        le, re, nose, lm, rm = px.unbind(1)
        self.origin = (le + re) / 2
        ex = re - le
        self.d = ex.norm(dim=1).clamp_min(1e-3)
        self.ex = ex / self.d[:, None]
        self.ey = torch.stack([-self.ex[:, 1], self.ex[:, 0]], dim=1)
        mouth = (lm + rm) / 2
        self.m = ((mouth - self.origin) * self.ey).sum(1).clamp_min(0.5 * self.d)
        self.nose_uv = self.to_uv_points(nose)
        self.h, self.w = h, w
        self.device = landmarks.device

    def to_uv_points(self, p: torch.Tensor) -> torch.Tensor:
        q = p - self.origin
        return torch.stack([(q * self.ex).sum(1) / self.d, (q * self.ey).sum(1) / self.m], dim=1)

    def grid(self, pivot_uv: torch.Tensor | None = None, angle: torch.Tensor | None = None,
             scale: torch.Tensor | None = None, shift_uv: torch.Tensor | None = None,
             window: tuple[int, int, int, int] | None = None):
        """(u, v), each (N, H, W): every pixel's face-local coordinates, optionally in a frame
        rotated by ``angle`` (radians) and scaled by ``scale`` about ``pivot_uv`` and moved by
        ``shift_uv`` (so a shape drawn in (u, v) is rotated, scaled and moved with it).
        ``window`` (top, bottom, left, right) restricts it to those rows and columns."""
        n = self.d.shape[0]
        dev = self.device
        y0, y1, x0, x1 = window if window is not None else (0, self.h, 0, self.w)
        ys = torch.arange(y0, y1, device=dev, dtype=torch.float32).view(1, -1, 1)
        xs = torch.arange(x0, x1, device=dev, dtype=torch.float32).view(1, 1, -1)
        v3 = lambda t: t.view(n, 1, 1)  # noqa: E731
        if pivot_uv is None:
            pivot_uv = torch.zeros(n, 2, device=dev)
        if shift_uv is not None:
            pivot_uv = pivot_uv + shift_uv
        pivot = (self.origin + pivot_uv[:, :1] * self.d[:, None] * self.ex
                 + pivot_uv[:, 1:] * self.m[:, None] * self.ey)
        qx, qy = xs - v3(pivot[:, 0]), ys - v3(pivot[:, 1])
        if angle is not None:  # rotate the pixel offsets by -angle: the shape turns by +angle
            c, s = v3(torch.cos(angle)), v3(torch.sin(angle))
            qx, qy = c * qx + s * qy, -s * qx + c * qy
        if scale is not None:
            qx, qy = qx / v3(scale), qy / v3(scale)
        u = (qx * v3(self.ex[:, 0]) + qy * v3(self.ex[:, 1])) / v3(self.d) + v3(pivot_uv[:, 0])
        v = (qx * v3(self.ey[:, 0]) + qy * v3(self.ey[:, 1])) / v3(self.m) + v3(pivot_uv[:, 1])
        if shift_uv is not None:
            u, v = u - v3(shift_uv[:, 0]), v - v3(shift_uv[:, 1])
        return u, v

    def to_pixels(self, uv: torch.Tensor, pivot_uv: torch.Tensor, angle: torch.Tensor,
                  scale: torch.Tensor, shift_uv: torch.Tensor) -> torch.Tensor:
        """Pixel positions (N, K, 2) of shape points uv (N, K, 2) drawn in the frame that
        ``grid`` makes with the same pivot, angle, scale and shift (its inverse)."""
        def px(p):  # (N, K, 2) frame coordinates -> pixel offsets from the origin
            return p[..., :1] * (self.d[:, None, None] * self.ex[:, None]) \
                + p[..., 1:] * (self.m[:, None, None] * self.ey[:, None])
        q = px(uv - pivot_uv[:, None]) * scale.view(-1, 1, 1)
        c, s = torch.cos(angle).view(-1, 1), torch.sin(angle).view(-1, 1)
        q = torch.stack([c * q[..., 0] - s * q[..., 1], s * q[..., 0] + c * q[..., 1]], dim=-1)
        return self.origin[:, None] + px((pivot_uv + shift_uv)[:, None]) + q

    def face_ellipse(self, u: torch.Tensor, v: torch.Tensor, enlarge: float | torch.Tensor = 1.0):
        """(qu, qv): coordinates normalised to the face ellipse (inside: qu^2 + qv^2 <= 1)."""
        if isinstance(enlarge, torch.Tensor):
            enlarge = enlarge.view(-1, 1, 1)
        return u / (FACE_AXES[0] * enlarge), (v - FACE_CENTER_V) / (FACE_AXES[1] * enlarge)


def face_region(images_or_shape, landmarks=None) -> torch.Tensor:
    """The face ellipse of each image as a (N, 1, H, W) bool tensor (the region that
    ``blur``/``partial``/``full`` occlude and that face coverage is measured on)."""
    if isinstance(images_or_shape, torch.Tensor):
        n, _, h, w = images_or_shape.shape
        device = images_or_shape.device
    else:
        n, _, h, w = images_or_shape
        device = "cpu"
    frame = FaceFrame(_landmarks_for("face_region", landmarks, n, device), h, w)
    qu, qv = frame.face_ellipse(*frame.grid())
    return (qu * qu + qv * qv <= 1).unsqueeze(1)


# --------------------------------------------------------------------------- fills

def _shaded_colour(colour: torch.Tensor, u: torch.Tensor, v: torch.Tensor, light: torch.Tensor):
    """(N, 3, H, W): a colour with soft directional shading across the local frame."""
    lx, ly = light[:, 0].view(-1, 1, 1), light[:, 1].view(-1, 1, 1)
    shade = (1 + 0.12 * (torch.tanh(0.8 * (u * lx + v * ly)))).unsqueeze(1)
    return (colour.view(-1, 3, 1, 1) * shade).clamp(0, 1)


def _random_colour(p: torch.Tensor) -> torch.Tensor:
    """(N, 3) colours from (N, 3) uniforms: hue, saturation and value spread widely."""
    h, s, v = p[:, 0] * 6, _lerp(p[:, 1], 0.1, 0.9), _lerp(p[:, 2], 0.15, 0.95)
    k = torch.stack([(5 + h) % 6, (3 + h) % 6, (1 + h) % 6], dim=1)
    return v[:, None] * (1 - s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1)))


def _to_channels(rgb: torch.Tensor, c: int) -> torch.Tensor:
    return rgb if c == 3 else rgb.mean(1, keepdim=True)


# --------------------------------------------------------------------------- occluders

class Occluder:
    """Base class: ``occluder(images, generator=None, seed=None, landmarks=None)`` ->
    ``(occluded, mask)``. Subclasses draw ``n_params`` uniforms per image and implement
    ``_draw(x, frame, p, pc, pixel_gen) -> (mask (N, H, W) bool, fill (N, C, H, W) float)``
    (p: the uniforms on the images' device, pc: the same on the CPU, for choices made on the host)."""

    kind = ""
    n_params = 0

    def __call__(self, images: torch.Tensor, *, generator: torch.Generator | None = None,
                 seed: int | None = None, landmarks=None) -> tuple[torch.Tensor, torch.Tensor]:
        op = f"occlude({self.kind!r})"
        _check_images(op, images)
        g = _make_generator(generator, seed)
        n, c, h, w = images.shape
        lm = _landmarks_for(op, landmarks, n, images.device)
        return self._apply(images, lm, g)

    def _apply(self, images, lm, g):
        n, c, h, w = images.shape
        pc = _uniform(g, n, self.n_params)
        p = pc.to(images.device)
        pixel_gen = _pixel_generator(g, images.device)
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        frame = FaceFrame(lm, h, w)
        mask, fill = self._draw(x, frame, p, pc, pixel_gen)
        mask = mask.unsqueeze(1)
        out = torch.where(mask, fill.to(x.dtype), x)
        if images.dtype == torch.uint8:
            out = out.clamp(0, 1).mul(255).round_().to(torch.uint8)
            # where the mask is 0 the bytes are the input's exactly
            out = torch.where(mask, out, images)
        else:
            out = torch.where(mask, out.to(images.dtype), images)
        return out, mask.to(images.dtype)

    def _draw(self, x, frame, p, pc, pixel_gen):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({opts})"


def _range(name: str, value, lo_ok: float, hi_ok: float) -> tuple[float, float]:
    lo, hi = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if not (lo_ok <= lo <= hi <= hi_ok):
        raise ValueError(f"{name} must be a number or a (low, high) range within "
                         f"[{lo_ok}, {hi_ok}], got {value!r}")
    return float(lo), float(hi)


def _check_fill(kind: str, fill: str, allowed: Sequence[str]) -> str:
    if fill not in allowed:
        raise ValueError(f"{kind}: fill must be one of {', '.join(map(repr, allowed))}, got {fill!r}")
    return fill


class NoseMask(Occluder):
    """A medical face mask over nose, mouth and chin, anchored to the landmarks.

    rotation: the largest random tilt in degrees; scale: (low, high) size factor; shift: the
    largest random shift in eye distances; colours: RGB triples to choose from (with probability
    ``random_colour`` any colour instead); textures: a subset of plain, pleats, fabric, dots."""

    kind = "nose-mask"
    n_params = 16
    _crop = True  # on the CPU, draw in the bounding box of the batch's masks (same result, faster)
    TEXTURES = ("plain", "pleats", "fabric", "dots")

    def __init__(self, rotation: float = 10.0, scale=(0.9, 1.1), shift: float = 0.05,
                 colours: Sequence[Sequence[float]] = MASK_COLOURS, random_colour: float = 0.25,
                 textures: Sequence[str] = TEXTURES):
        self.rotation = float(_range("nose-mask: rotation", rotation, 0, 90)[1])
        self.scale = _range("nose-mask: scale", scale, 0.1, 10)
        self.shift = float(_range("nose-mask: shift", shift, 0, 2)[1])
        self.colours = tuple(tuple(float(v) for v in col) for col in colours)
        if not self.colours or any(len(col) != 3 for col in self.colours):
            raise ValueError(f"nose-mask: colours must be RGB triples, got {colours!r}")
        self.random_colour = float(_range("nose-mask: random_colour", random_colour, 0, 1)[0])
        bad = [t for t in textures if t not in self.TEXTURES]
        if bad or not textures:
            raise ValueError(f"nose-mask: textures must be among {self.TEXTURES}, got {textures!r}")
        self.textures = tuple(textures)

    def polygon(self, p: torch.Tensor) -> torch.Tensor:
        """(N, K, 2) polygon vertices in the face-local (u, v) frame, shaped by uniforms p."""
        top_c = _lerp(p[:, 0], 0.14, 0.28)     # top edge on the nose bridge
        top_s = top_c + _lerp(p[:, 1], 0.08, 0.2)  # top edge under the eyes, on the cheeks
        half = _lerp(p[:, 2], 0.98, 1.1)        # half width, cheek to cheek
        chin = _lerp(p[:, 3], 1.72, 1.92)       # bottom under the chin
        z = torch.zeros_like(half)
        right = [
            (0.45 * half, top_c + 0.35 * (top_s - top_c)),
            (0.9 * half, top_s),
            (half, top_s + 0.2),
            (0.98 * half, z + 1.15),
            (0.86 * half, z + 1.42),
            (0.62 * half, 0.5 * (1.55 + chin)),
            (0.32 * half, chin - 0.06),
        ]
        pts = [(z, top_c)] + right + [(z, chin)] + [(-u, v) for u, v in reversed(right)]
        return torch.stack([torch.stack([u, v], dim=1) for u, v in pts], dim=1)

    def _draw(self, x, frame, p, pc, pixel_gen):
        n, c, h, w = x.shape
        deg = math.radians(self.rotation)
        angle = _lerp(p[:, 4], -deg, deg)
        scale = _lerp(p[:, 5], *self.scale)
        shift = torch.stack([_lerp(p[:, 6], -self.shift, self.shift),
                             _lerp(p[:, 7], -self.shift, self.shift)], dim=1)
        poly = self.polygon(p)
        window = None
        if self._crop and x.device.type == "cpu":  # draw only inside the masks' bounding box
            corners = frame.to_pixels(poly, frame.nose_uv, angle, scale, shift)
            lo, hi = corners.amin(dim=(0, 1)), corners.amax(dim=(0, 1))
            x0, y0 = max(0, int(lo[0]) - 1), max(0, int(lo[1]) - 1)
            x1, y1 = min(w, int(hi[0]) + 2), min(h, int(hi[1]) + 2)
            if x1 > x0 and y1 > y0:
                window = (y0, y1, x0, x1)
            else:  # entirely outside the image
                return torch.zeros(n, h, w, dtype=torch.bool, device=x.device), x
        u, v = frame.grid(pivot_uv=frame.nose_uv, angle=angle, scale=scale, shift_uv=shift, window=window)
        mask = _inside_polygon(u, v, poly)

        # colour: from the palette, or (with probability random_colour) any colour
        palette = torch.tensor(self.colours, device=x.device)
        pick = (p[:, 8] * len(self.colours)).long().clamp_max(len(self.colours) - 1)
        colour = torch.where((p[:, 9] < self.random_colour)[:, None],
                             _random_colour(p[:, 10:13]), palette[pick])
        half = poly[:, 2, 0].view(n, 1, 1) / 0.9
        # the mask bends around the face: darker toward the cheeks, lit from one side
        across = (u / half).clamp(-1, 1)
        shade = 1 - 0.22 * across ** 2 + 0.08 * across * (2 * p[:, 13].view(n, 1, 1) - 1)
        tex_id = (pc[:, 14] * len(self.textures)).long().clamp_max(len(self.textures) - 1)
        top_c, chin = poly[:, 0, 1].view(n, 1, 1), poly[:, 8, 1].view(n, 1, 1)
        t = (v - top_c) / (chin - top_c)  # 0 at the top edge, 1 at the chin
        mod = torch.ones_like(u)
        for k, name in enumerate(self.textures):
            idx = (tex_id == k).nonzero().flatten()  # chosen on the host: no device sync
            if name == "plain" or idx.numel() == 0:
                continue
            idx = idx.to(x.device)
            mod.index_copy_(0, idx, self._texture(name, u[idx], v[idx], t[idx], colour[idx], pixel_gen))
        # a seam along the top edge (the nose wire)
        seam = 1 - 0.12 * ((t >= 0) & (t < 0.045)).float()
        fill = _to_channels((colour.view(n, 3, 1, 1) * (shade * mod * seam).unsqueeze(1)).clamp(0, 1), c)
        if window is None:
            return mask, fill
        y0, y1, x0, x1 = window
        full_mask = torch.zeros(n, h, w, dtype=torch.bool, device=x.device)
        full_mask[:, y0:y1, x0:x1] = mask
        full_fill = x.clone()
        full_fill[:, :, y0:y1, x0:x1] = fill
        return full_mask, full_fill

    @staticmethod
    def _texture(name, u, v, t, colour, pixel_gen):
        """The brightness modulation of a texture over the mask's (u, v) frame."""
        if name == "pleats":  # three horizontal folds: a dark crease under a light ridge
            f = torch.zeros_like(u)
            for centre in (0.3, 0.48, 0.66):
                crease = torch.exp(-((t - centre) / 0.025) ** 2)
                ridge = torch.exp(-((t - centre + 0.05) / 0.03) ** 2)
                f = f - 0.2 * crease + 0.08 * ridge
            return 1 + f
        if name == "fabric":  # woven noise plus a faint weave
            noise = torch.rand(u.shape, generator=pixel_gen, device=u.device)
            return 1 + 0.1 * (noise - 0.5) + 0.04 * torch.sin(u * 40) * torch.sin(v * 40)
        # dots: a printed pattern, darker on light masks, lighter on dark ones
        period = 0.24
        du = torch.remainder(u, period) - period / 2
        dv = torch.remainder(v * 0.75, period) - period / 2
        dots = (du * du + dv * dv) < (0.05 ** 2)
        tone = torch.where(colour.mean(1) > 0.5, 0.55, 2.2).view(-1, 1, 1)
        return torch.where(dots, tone, torch.ones_like(u))


def _inside_polygon(u: torch.Tensor, v: torch.Tensor, poly: torch.Tensor) -> torch.Tensor:
    """Even-odd point-in-polygon test of (N, H, W) points against (N, K, 2) polygons."""
    k = poly.shape[1]
    inside = torch.zeros(u.shape, dtype=torch.bool, device=u.device)
    xs, ys = poly[..., 0].view(-1, k, 1, 1), poly[..., 1].view(-1, k, 1, 1)
    above = [ys[:, i] > v for i in range(k)]  # each vertex's comparison serves two edges
    for i in range(k):
        j = (i + 1) % k
        x1, y1, x2, y2 = xs[:, i], ys[:, i], xs[:, j], ys[:, j]
        dy = torch.where((y2 - y1).abs() < 1e-12, torch.full_like(y1, 1e-12), y2 - y1)
        slope = (x2 - x1) / dy
        x_at = torch.addcmul(x1 - y1 * slope, v, slope)
        inside ^= (above[i] ^ above[j]) & (u < x_at)
    return inside


class Blur(Occluder):
    """Gaussian blur over a random ellipse inside the face.

    sigma: (low, high) blur sigma as a fraction of the image side; region: (low, high) size of
    the ellipse relative to the face ellipse; jitter: the largest shift of its centre in face
    units."""

    kind = "blur"
    n_params = 5
    _crop = True  # on the CPU, blur only the bounding box of the batch's masks (same result)

    def __init__(self, sigma=(0.02, 0.05), region=(0.5, 1.0), jitter: float = 0.25):
        self.sigma = _range("blur: sigma", sigma, 1e-3, 0.5)
        self.region = _range("blur: region", region, 0.05, 2.0)
        self.jitter = float(_range("blur: jitter", jitter, 0, 1)[1])

    def _draw(self, x, frame, p, pc, pixel_gen):
        n, c, h, w = x.shape
        side = min(h, w)
        sigma = _lerp(p[:, 0], *self.sigma) * side
        u, v = frame.grid()
        cu = _lerp(p[:, 1], -self.jitter, self.jitter).view(n, 1, 1) * FACE_AXES[0]
        cv = _lerp(p[:, 2], -self.jitter, self.jitter).view(n, 1, 1) * FACE_AXES[1]
        ru = _lerp(p[:, 3], *self.region).view(n, 1, 1)
        rv = _lerp(p[:, 4], *self.region).view(n, 1, 1)
        qu, qv = frame.face_ellipse(u, v)
        # the blurred ellipse, kept inside the face ellipse
        bu, bv = (qu - cu / FACE_AXES[0]) / ru, (qv - cv / FACE_AXES[1]) / rv
        mask = (bu * bu + bv * bv <= 1) & (qu * qu + qv * qv <= 1)
        # the kernel radius from the host copy of the parameters: no device sync
        radius = _blur_radius(float(_lerp(pc[:, 0], *self.sigma).max()) * side, h, w)
        if self._crop and x.device.type == "cpu":
            # blur only the masks' bounding box plus the kernel's reach: the same pixels there
            rows, cols = mask.any(0).any(1).nonzero(), mask.any(0).any(0).nonzero()
            if rows.numel() == 0:
                return mask, x
            y0, y1 = max(0, int(rows.min()) - radius), min(h, int(rows.max()) + 1 + radius)
            x0, x1 = max(0, int(cols.min()) - radius), min(w, int(cols.max()) + 1 + radius)
            if min(y1 - y0, x1 - x0) > radius:
                fill = x.clone()
                fill[:, :, y0:y1, x0:x1] = gaussian_blur(x[:, :, y0:y1, x0:x1], sigma, radius)
                return mask, fill
        return mask, gaussian_blur(x, sigma, radius)


def _blur_radius(sigma_max: float, h: int, w: int) -> int:
    return max(1, min(int(math.ceil(3 * sigma_max)), h - 1, w - 1))


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """Blur each image of (N, C, H, W) float x with its own Gaussian sigma (N,) in pixels
    (separable, reflect padding, window 2 * radius + 1; radius by default ceil(3 sigma_max),
    at most the image)."""
    n, c, h, w = x.shape
    radius = _blur_radius(float(sigma.max()), h, w) if radius is None else min(radius, h - 1, w - 1)
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t.view(1, -1) / sigma.view(-1, 1).clamp_min(1e-3)) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, dim=0)  # (N*C, 2r+1)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(n * c, 1, -1, 1), groups=n * c)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(n * c, 1, 1, -1), groups=n * c)
    return y.view(n, c, h, w)


def _object_fill(x, u, v, p, pc, pixel_gen, noise_prob: float):
    """An occluding object's pixels: a shaded solid colour with a fine grain, or (with
    probability noise_prob) uniform noise; each is computed only for the images that use it."""
    n, c, h, w = x.shape
    fill = torch.empty(n, 3, h, w, device=x.device)
    use_noise = pc[:, 4] < noise_prob  # chosen on the host: no device sync
    solid_idx = (~use_noise).nonzero().flatten()
    noise_idx = use_noise.nonzero().flatten()
    if solid_idx.numel():
        i = solid_idx.to(x.device)
        q = p[i]
        colour = _random_colour(q[:, 0:3])
        light = torch.stack([torch.cos(q[:, 3] * 2 * math.pi), torch.sin(q[:, 3] * 2 * math.pi)], dim=1)
        solid = _shaded_colour(colour, u[i], v[i], light)
        grain = torch.rand(len(i), 1, h, w, generator=pixel_gen, device=x.device)
        fill.index_copy_(0, i, (solid * (0.96 + 0.08 * grain)).clamp(0, 1))
    if noise_idx.numel():
        i = noise_idx.to(x.device)
        fill.index_copy_(0, i, torch.rand(len(i), 3, h, w, generator=pixel_gen, device=x.device))
    return _to_channels(fill, c)


class Partial(Occluder):
    """Part of the face covered: the (enlarged) face ellipse beyond a random line.

    offset: (low, high) signed distance of the line from the face centre in face-ellipse
    units (0: half the face); enlarge: the ellipse's size factor (the object extends past the
    face outline); noise: the probability of a noise fill instead of a shaded colour."""

    kind = "partial"
    n_params = 7

    def __init__(self, offset=(-0.3, 0.35), enlarge: float = 1.1, noise: float = 0.3):
        self.offset = _range("partial: offset", offset, -0.95, 0.95)
        self.enlarge = float(_range("partial: enlarge", enlarge, 0.5, 3)[0])
        self.noise = float(_range("partial: noise", noise, 0, 1)[0])

    def _draw(self, x, frame, p, pc, pixel_gen):
        n = x.shape[0]
        u, v = frame.grid()
        qu, qv = frame.face_ellipse(u, v, self.enlarge)
        phi = p[:, 0] * 2 * math.pi
        t = _lerp(p[:, 1], *self.offset).view(n, 1, 1)
        side = qu * torch.cos(phi).view(n, 1, 1) + qv * torch.sin(phi).view(n, 1, 1)
        mask = (qu * qu + qv * qv <= 1) & (side > t)
        return mask, _object_fill(x, u, v, p[:, 2:], pc[:, 2:], pixel_gen, self.noise)


class Full(Occluder):
    """The whole face covered: the face ellipse enlarged by a random factor in ``enlarge``,
    filled with a shaded colour or (probability ``noise``) noise."""

    kind = "full"
    n_params = 6

    def __init__(self, enlarge=(1.0, 1.15), noise: float = 0.3):
        self.enlarge = _range("full: enlarge", enlarge, 0.5, 3)
        self.noise = float(_range("full: noise", noise, 0, 1)[0])

    def _draw(self, x, frame, p, pc, pixel_gen):
        u, v = frame.grid()
        qu, qv = frame.face_ellipse(u, v, _lerp(p[:, 0], *self.enlarge))
        mask = qu * qu + qv * qv <= 1
        return mask, _object_fill(x, u, v, p[:, 1:], pc[:, 1:], pixel_gen, self.noise)


def _side_range(kind: str, size, side: int) -> tuple[float, float]:
    """A (low, high) length in pixels from a fraction of the side (float <= 1) or pixels (int)."""
    lo, hi = (size, size) if isinstance(size, (int, float)) else tuple(size)
    vals = []
    for s in (lo, hi):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or s <= 0:
            raise ValueError(f"{kind}: size must be a fraction in (0, 1], pixels (int >= 1) or a "
                             f"(low, high) range of them, got {size!r}")
        vals.append(float(s) * side if isinstance(s, float) and s <= 1 else float(s))
    if vals[0] > vals[1] or vals[1] > side:
        raise ValueError(f"{kind}: size {size!r} gives {vals[0]:g}-{vals[1]:g} pixels, which must "
                         f"be an ordered range no larger than the image side {side}")
    return vals[0], vals[1]


class Square(Occluder):
    """A square hole for face completion: side ``size`` (a fraction of the image side, pixels
    as an int, or a (low, high) range of either), at a uniformly random position inside the
    image, filled with uniform noise (``fill="noise"``) or ``value`` (``fill="constant"``)."""

    kind = "square"
    n_params = 3

    def __init__(self, size=(0.25, 0.5), fill: str = "noise", value: float = 0.5):
        _side_range("square", size, 10**9)  # validates the form; the range checks at use
        self.size = size
        self.fill = _check_fill("square", fill, ("noise", "constant"))
        self.value = float(_range("square: value", value, 0, 1)[0])

    def _draw(self, x, frame, p, pc, pixel_gen):
        n, c, h, w = x.shape
        lo, hi = _side_range("square", self.size, min(h, w))
        side = torch.round(_lerp(p[:, 0], lo, hi)).clamp(1, min(h, w))
        top = torch.floor(p[:, 1] * (h - side + 1)).clamp_max(h - side)
        left = torch.floor(p[:, 2] * (w - side + 1)).clamp_max(w - side)
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        t, l, s = top.view(n, 1, 1), left.view(n, 1, 1), side.view(n, 1, 1)
        mask = (ys >= t) & (ys < t + s) & (xs >= l) & (xs < l + s)
        if self.fill == "noise":
            fill = torch.rand(n, c, h, w, generator=pixel_gen, device=x.device)
        else:
            fill = torch.full((n, c, h, w), self.value, device=x.device)
        return mask, fill


class Strokes(Occluder):
    """Free-form brush strokes (as in free-form inpainting): 1 to ``max_strokes`` strokes,
    each a random walk of ``segments`` (low, high) segments of ``length`` (fractions of the
    side) with a brush ``width`` (fractions of the side), starting in the central ``area``
    (fraction of the image) and drawn with round caps. Filled with ``value`` or noise."""

    kind = "strokes"
    MAX_SEGMENTS = 8

    def __init__(self, max_strokes: int = 4, segments=(3, 6), length=(0.08, 0.2), width=(0.03, 0.07),
                 area: float = 0.7, fill: str = "constant", value: float = 1.0):
        if isinstance(max_strokes, bool) or not isinstance(max_strokes, int) or not 1 <= max_strokes <= 16:
            raise ValueError(f"strokes: max_strokes must be an int in [1, 16], got {max_strokes!r}")
        self.max_strokes = max_strokes
        lo, hi = _range("strokes: segments", segments, 1, self.MAX_SEGMENTS)
        if lo != int(lo) or hi != int(hi):
            raise ValueError(f"strokes: segments must be whole numbers, got {segments!r}")
        self.segments = (int(lo), int(hi))
        self.length = _range("strokes: length", length, 0, 1)
        self.width = _range("strokes: width", width, 1e-3, 1)
        self.area = float(_range("strokes: area", area, 0.05, 1)[0])
        self.fill = _check_fill("strokes", fill, ("constant", "noise"))
        self.value = float(_range("strokes: value", value, 0, 1)[0])

    @property
    def n_params(self) -> int:  # count, then per stroke: x, y, angle, width, segments, turns, lengths
        return 1 + self.max_strokes * (5 + 2 * self.MAX_SEGMENTS)

    def _draw(self, x, frame, p, pc, pixel_gen):
        n, c, h, w = x.shape
        side = min(h, w)
        count = 1 + (p[:, 0] * self.max_strokes).long().clamp_max(self.max_strokes - 1)
        per = 5 + 2 * self.MAX_SEGMENTS
        margin = (1 - self.area) / 2
        segs = []  # (ax, ay, bx, by, radius, on), each (N,), one per stroke segment
        for s in range(self.max_strokes):
            q = p[:, 1 + s * per: 1 + (s + 1) * per]
            active = count > s
            px = _lerp(q[:, 0], margin, 1 - margin) * w
            py = _lerp(q[:, 1], margin, 1 - margin) * h
            angle = q[:, 2] * 2 * math.pi
            radius = _lerp(q[:, 3], *self.width) * side / 2
            nseg = self.segments[0] + (q[:, 4] * (self.segments[1] - self.segments[0] + 1)).long()
            for k in range(self.segments[1]):
                angle = angle + _lerp(q[:, 5 + k], -0.4 * math.pi, 0.4 * math.pi)
                length = _lerp(q[:, 5 + self.MAX_SEGMENTS + k], *self.length) * side
                qx, qy = px + length * torch.cos(angle), py + length * torch.sin(angle)
                segs.append((px, py, qx, qy, radius, active & (nseg > k)))
                px, py = qx, qy
        ax, ay, bx, by, radius, on = (torch.stack(t, dim=1) for t in zip(*segs))  # (N, M)
        # Each segment is drawn in its own square patch around its midpoint, big enough for
        # the longest segment and the widest brush, then scattered into the mask.
        patch = int(math.ceil(self.length[1] * side + self.width[1] * side)) + 3
        offs = torch.arange(patch, device=x.device, dtype=torch.float32)
        x0 = torch.floor((ax + bx) / 2 - patch / 2)
        y0 = torch.floor((ay + by) / 2 - patch / 2)
        X = (x0.unsqueeze(-1) + offs).unsqueeze(-2)  # (N, M, 1, P)
        Y = (y0.unsqueeze(-1) + offs).unsqueeze(-1)  # (N, M, P, 1)
        d2 = _segment_distance2(X, Y, *(t.unsqueeze(-1).unsqueeze(-1) for t in (ax, ay, bx, by)))
        r = radius.unsqueeze(-1).unsqueeze(-1)
        hit = (d2 <= r * r) & on.unsqueeze(-1).unsqueeze(-1) & (X >= 0) & (X < w) & (Y >= 0) & (Y < h)
        img = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        flat = (img * h + Y.clamp(0, h - 1).long()) * w + X.clamp(0, w - 1).long()
        flat = torch.where(hit, flat, n * h * w)  # misses go to one spare slot
        canvas = torch.zeros(n * h * w + 1, dtype=torch.bool, device=x.device)
        canvas.index_fill_(0, flat.flatten(), True)
        mask = canvas[:-1].view(n, h, w)
        if self.fill == "noise":
            fill = torch.rand(n, c, h, w, generator=pixel_gen, device=x.device)
        else:
            fill = torch.full((n, c, h, w), self.value, device=x.device)
        return mask, fill


def _segment_distance2(xs, ys, ax, ay, bx, by):
    """Squared distance of the points (xs, ys) to the segments A-B (all broadcast together)."""
    dx, dy = bx - ax, by - ay
    den = (dx * dx + dy * dy).clamp_min(1e-9)
    rx, ry = xs - ax, ys - ay
    t = ((rx * dx + ry * dy) / den).clamp(0, 1)
    ex, ey = rx - t * dx, ry - t * dy
    return ex * ex + ey * ey


class Mix(Occluder):
    """A weighted choice of kind per image. ``weights``: {kind: weight} over the other kinds
    (default ``MIX_WEIGHTS``); ``options``: {kind: {option: value}} for each kind."""

    kind = "mix"
    n_params = 1

    def __init__(self, weights: Mapping[str, float] | None = None,
                 options: Mapping[str, Mapping] | None = None):
        weights = dict(MIX_WEIGHTS if weights is None else weights)
        bad = [k for k in weights if k not in _CLASSES or k == "mix"]
        if bad or not weights or any(not (wt >= 0) for wt in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"mix: weights must map kinds among {SINGLE_KINDS} to non-negative "
                             f"numbers, not all 0, got {weights!r}")
        options = dict(options or {})
        self.weights = weights
        self._occluders = {k: make_occluder(k, **options.get(k, {})) for k in weights}

    def _apply(self, images, lm, g):
        n = images.shape[0]
        kinds = list(self.weights)
        w = torch.tensor([self.weights[k] for k in kinds], dtype=torch.float64)
        u = _uniform(g, n, 1)[:, 0].double()
        choice = torch.searchsorted(torch.cumsum(w / w.sum(), 0)[:-1].contiguous(), u, right=True)
        dev = g.device if g is not None else "cpu"
        seeds = torch.randint(0, 2**62, (len(kinds),), generator=g, device=dev).tolist()
        out = images.clone()
        mask = torch.zeros(n, 1, *images.shape[2:], dtype=images.dtype, device=images.device)
        for j, kind in enumerate(kinds):
            idx = (choice == j).nonzero().flatten()
            if idx.numel() == 0:
                continue
            di = idx.to(images.device)
            o, m = self._occluders[kind]._apply(images.index_select(0, di), lm.index_select(0, di),
                                                torch.Generator().manual_seed(seeds[j]))
            out.index_copy_(0, di, o)
            mask.index_copy_(0, di, m)
        self._last_choice = [kinds[i] for i in choice.tolist()]
        return out, mask

    @property
    def last_choice(self) -> list[str]:
        """The kind each image of the last batch got."""
        return list(getattr(self, "_last_choice", []))


_CLASSES = {"nose-mask": NoseMask, "blur": Blur, "partial": Partial, "full": Full,
            "square": Square, "strokes": Strokes, "mix": Mix}


def make_occluder(kind: str, **options) -> Occluder:
    """The occluder of ``kind`` (one of ``KINDS``) with its options (see each class)."""
    if kind not in _CLASSES:
        raise ValueError(f"occlusion kind must be one of {', '.join(KINDS)}, got {kind!r}")
    try:
        return _CLASSES[kind](**options)
    except TypeError as e:
        raise TypeError(f"{kind}: {e}") from None


def occlude(images: torch.Tensor, kind: str = "mix", *, generator: torch.Generator | None = None,
            seed: int | None = None, landmarks=None, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlude a batch: ``(occluded, mask)`` for ``images`` (N, C, H, W) with the occluder of
    ``kind`` built with ``options``. See the module docstring."""
    return make_occluder(kind, **options)(images, generator=generator, seed=seed, landmarks=landmarks)


def coverage_stats(kind: str, n: int = 2000, size: int = 128, seed: int = 0, batch: int = 250,
                   landmarks=None, **options) -> dict[str, tuple[float, float, float]]:
    """Measured coverage of ``kind``: {"image": (mean, min, max), "face": (mean, min, max)},
    the fractions of the image and of the face ellipse that the mask covers."""
    occ = make_occluder(kind, **options)
    g = torch.Generator().manual_seed(seed)
    img_cov, face_cov = [], []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        x = torch.zeros(b, 3, size, size)
        _, m = occ(x, generator=g, landmarks=landmarks)
        face = face_region(x, landmarks).float()
        img_cov.append(m.mean((1, 2, 3)))
        face_cov.append((m * face).sum((1, 2, 3)) / face.sum((1, 2, 3)))
    out = {}
    for name, vals in (("image", torch.cat(img_cov)), ("face", torch.cat(face_cov))):
        out[name] = (float(vals.mean()), float(vals.min()), float(vals.max()))
    return out
