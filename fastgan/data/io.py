"""Image files in and out: listing, decoding with a centre crop + resize, PNG writing, grids.

Decoding uses Pillow (no torchvision). Every reader returns uint8 tensors, (C, S, S), so that
caches and worker processes move a quarter of the bytes of float images; conversion to float
happens on the device (``to_float``).

Coordinates: a normalised point (x, y) in [0, 1] has pixel centre ``i`` at ``(i + 0.5) / W``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})

_EXIF_ORIENTATION = 0x0112

#: Errors that mean "this file is not a readable image" (as opposed to a bug in fastgan).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, MemoryError)


class ImageReadError(ValueError):
    """A file that is not a readable image (missing, empty, truncated, not an image format)."""


def _pil():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - pillow is a dependency
        raise ImportError("fastgan.data needs Pillow: pip install pillow") from e
    return Image


def is_image_name(path: str | os.PathLike) -> bool:
    """True when the file name has an image extension (jpg, jpeg, png, webp; any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_files(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Every regular file under ``root`` (hidden files and folders excluded), sorted by
    relative path so the order is the same on every machine."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a directory")
    out: list[Path] = []
    if recursive:
        # Linked folders are followed, each real folder once: a symlink loop (a/link -> a)
        # would otherwise be walked again at every depth until the path is too long.
        seen: set[tuple[int, int]] = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen:
                dirnames[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            out.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    else:
        out = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _as_mode(im, mode: str):
    """``im`` upright (its EXIF orientation applied) in ``mode`` ("RGB" or "L"). 16-bit images
    (Pillow's modes I;16* and I) are scaled from 0-65535 to 0-255: convert would clip them."""
    from PIL import ImageOps

    if im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):   # "I;16", "I;16B", "I": 16-bit greyscale PNGs and TIFFs
        wide = np.asarray(im, dtype=np.int64)
        im = _pil().fromarray(((np.clip(wide, 0, 65535) + 128) // 257).astype(np.uint8), "L")
    return im.convert(mode)


@contextlib.contextmanager
def _reading(path):
    """Any failure to read the image ``path`` as an ImageReadError that names it."""
    Image = _pil()
    try:
        yield
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: too large to decode safely: {e}") from e
    except _DECODE_ERRORS as e:
        raise ImageReadError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e


def read_pixels(path: str | os.PathLike, mode: str = "RGB") -> torch.Tensor:
    """uint8 (C, H, W) of an image file at its own size, upright (mode "RGB" or "L");
    ImageReadError for anything unreadable."""
    with _reading(path), _pil().open(path) as im:
        arr = np.asarray(_as_mode(im, mode), dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def check_header(path: str | os.PathLike) -> str | None:
    """None when Pillow recognises the file as an image from its header (cheap: the pixel
    data is not decoded), otherwise the reason it is not readable."""
    Image = _pil()
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w < 1 or h < 1:
                return f"empty image {w}x{h}"
    except Image.DecompressionBombError as e:
        return f"too large: {e}"
    except _DECODE_ERRORS as e:
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return None


def square_box(w: int, h: int) -> tuple[int, int, int, int]:
    """The centre square (left, top, right, bottom) of a w x h image in whole pixels: the crop
    that ``decode`` takes before it resizes (so nothing outside it bleeds in)."""
    m = min(w, h)
    left, top = (w - m) // 2, (h - m) // 2
    return left, top, left + m, top + m


def normalise_points(points: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """Pixel coordinates (..., 2) of points in a w x h image (pixel centres at integers) to
    normalised (x, y) coordinates of the square that ``decode`` returns (any size)."""
    left, top, right, _ = square_box(w, h)
    m = right - left
    offset = torch.tensor([left, top], dtype=torch.float32)
    return (points.float() + 0.5 - offset) / m


def decode(path: str | os.PathLike, size: int | None = None, *, mode: str = "RGB",
           resample: str = "bicubic") -> tuple[torch.Tensor, tuple[int, int]]:
    """Read an image, centre-crop it to a square and resize it to ``size`` (None: keep the
    square crop's side). Returns a uint8 tensor (C, S, S) (C = 3 for ``"RGB"``, 1 for ``"L"``)
    and the file's (width, height), before its EXIF orientation is applied. Raises ImageReadError for anything unreadable."""
    Image = _pil()
    filters = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
               "nearest": Image.Resampling.NEAREST}
    with _reading(path), Image.open(path) as im:
        w, h = im.size
        m = min(w, h)
        if size is not None and im.format == "JPEG" and m >= 2 * size:
            # DCT-domain downscaling: JPEG decodes at 1/2, 1/4 or 1/8 scale for free.
            im.draft("RGB" if mode == "RGB" else "L", (w * size // m + 1, h * size // m + 1))
        im = _as_mode(im, mode)
        iw, ih = im.size
        res = im.crop(square_box(iw, ih)) if iw != ih else im
        if size is not None and res.size != (size, size):
            res = res.resize((size, size), filters[resample])
        arr = np.asarray(res, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous(), (w, h)


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1] (float input is returned as it is, cast to dtype)."""
    if images.dtype == torch.uint8:
        return images.to(dtype).div_(255)
    return images.to(dtype)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8 [0, 255], rounded to nearest (uint8 input is returned as it is)."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().float().clamp(0, 1).mul(255).round_().to(torch.uint8)


def write_png(path: str | os.PathLike, image: torch.Tensor) -> None:
    """Write a (C, H, W) or (H, W) image (uint8, or float in [0, 1]) as a PNG. The bytes
    depend only on the pixels (no timestamps or metadata), so equal images give equal files."""
    Image = _pil()
    img = to_uint8(image.cpu())
    if img.dim() == 3:
        if img.shape[0] == 1:
            img = img[0]
        else:
            img = img.permute(1, 2, 0)
    arr = np.ascontiguousarray(img.numpy())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG", compress_level=6)


def make_grid(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile (N, C, H, W) images into one (C, H', W') image, ``nrow`` images per row."""
    if images.dim() != 4:
        raise ValueError(f"make_grid: images must be 4-D (N, C, H, W), got shape {tuple(images.shape)}")
    images = to_float(images.cpu())
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    rows = (n + ncol - 1) // ncol
    grid = torch.full((c, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value)
    for i in range(n):
        r, q = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return grid
