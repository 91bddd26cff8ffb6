"""Image files that users' folders hold and fastgan did not write: made on the fly for the
corrupt-data tests (tests/test_corrupt_data.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (40, 44)   # width, height of the good images (not square: centre-cropped)


def good(folder: Path, n: int, prefix: str = "face", seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def truncated(folder: Path, name: str) -> Path:
    """The first half of a valid file: the header reads, the pixel data does not."""
    p = folder / name
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    return p


def zero_bytes(folder: Path, name: str = "empty.jpg") -> Path:
    p = folder / name
    p.write_bytes(b"")
    return p


def not_an_image(folder: Path, name: str = "notes.png") -> Path:
    p = folder / name
    p.write_text("these are my notes, not a picture\n")
    return p


def large(folder: Path, name: str = "huge.png", side: int = 160) -> Path:
    """A plain image, a decompression bomb once PIL.Image.MAX_IMAGE_PIXELS is made small."""
    p = folder / name
    Image.new("RGB", (side, side), (10, 20, 30)).save(p)
    return p


def sixteen_bit(folder: Path, value: int = 32896, name: str = "deep.png") -> Path:
    """A 16-bit greyscale PNG, every pixel ``value`` (0-65535)."""
    p = folder / name
    Image.fromarray(np.full((SIZE[1], SIZE[0]), value, dtype=np.uint16)).save(p)
    return p


def palette(folder: Path, name: str = "palette.png") -> Path:
    """Every pixel palette entry 1, which is (200, 30, 60)."""
    p = folder / name
    im = Image.new("P", SIZE, 1)
    im.putpalette([0, 0, 0, 200, 30, 60] + [0] * (3 * 254))
    im.save(p)
    return p


def grey(folder: Path, name: str = "grey.png", level: int = 77) -> Path:
    p = folder / name
    Image.new("L", SIZE, level).save(p)
    return p


def rgba(folder: Path, name: str = "alpha.png") -> Path:
    p = folder / name
    Image.new("RGBA", SIZE, (10, 200, 30, 128)).save(p)
    return p


def cmyk_jpeg(folder: Path, name: str = "print.jpg") -> Path:
    p = folder / name
    Image.new("CMYK", SIZE, (0, 255, 0, 0)).save(p, quality=100)   # magenta
    return p


def exif_rotated(folder: Path, name: str = "phone.jpg") -> Path:
    """Stored 60 wide x 40 high with its left quarter blue, EXIF orientation 6 (shown rotated
    90 degrees clockwise: 40 wide x 60 high, the blue band at the top)."""
    p = folder / name
    im = Image.new("RGB", (60, 40), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 15, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(p, exif=exif, quality=100)
    return p


def symlink_loop(folder: Path) -> Path:
    """folder/loop/again -> folder/loop: a folder that contains itself."""
    (folder / "loop").mkdir(parents=True, exist_ok=True)
    link = folder / "loop" / "again"
    os.symlink(folder / "loop", link)
    return link


def every_bad_kind(folder: Path) -> dict[str, Path]:
    """One file of each kind that cannot be read, by what is wrong with it."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"truncated jpeg": truncated(folder, "cut.jpg"), "truncated png": truncated(folder, "cut.png"),
            "zero bytes": zero_bytes(folder), "not an image": not_an_image(folder)}
