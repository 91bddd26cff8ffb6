"""Prediction / target / mask folders for ``fastgan eval --pred DIR --target DIR [--mask DIR]``.

Files are paired by their path relative to the folder without the extension (``a/b.png`` with
``a/b.jpg``), as ``fastgan occlude`` writes them. Masks are 8-bit grey images, > 127 = occluded
(``fastgan occlude`` writes 255 = occluded). Images are read as they are (no crop, no resize):
every image must have the target's size, and all targets one size. Any mismatch is an error
that names the files.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fastgan.data.io import is_image_name, list_files, read_pixels


def _stems(folder: Path, role: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise ValueError(f"eval: the --{role} folder {str(folder)!r} does not exist or is not a directory")
    out: dict[str, Path] = {}
    for p in list_files(folder):
        if not is_image_name(p):
            continue
        stem = p.relative_to(folder).with_suffix("").as_posix()
        if stem in out:
            raise ValueError(f"eval: two --{role} files for one name: {out[stem]} and {p}")
        out[stem] = p
    if not out:
        raise ValueError(f"eval: the --{role} folder {str(folder)!r} holds no images (jpg, jpeg, png, webp)")
    return out


def _missing(names, role: str, other: str, folder: Path) -> str:
    names = sorted(names)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"{len(names)} --{role} images have no --{other} image in {folder}: {shown}"


def pair_files(pred: str | Path, target: str | Path, mask: str | Path | None = None) -> list[tuple]:
    """[(name, pred_path, target_path, mask_path or None)] sorted by name; every pred must have a
    target (and mask) and every target a pred, else ValueError naming the unmatched files."""
    dirs = {"pred": Path(pred), "target": Path(target)}
    if mask is not None:
        dirs["mask"] = Path(mask)
    found = {role: _stems(d, role) for role, d in dirs.items()}
    problems = []
    for role in dirs:
        for other in dirs:
            if role != other and (role == "pred" or other == "pred"):
                extra = set(found[role]) - set(found[other])
                if extra:
                    problems.append(_missing(extra, role, other, dirs[other]))
    if problems:
        raise ValueError("eval: the folders do not pair up: " + "; ".join(problems))
    return [(s, found["pred"][s], found["target"][s], found["mask"][s] if mask is not None else None)
            for s in sorted(found["pred"])]


def read_image(path: Path, mode: str = "RGB") -> torch.Tensor:
    """uint8 (C, H, W) of an image file as it is (mode "RGB" or "L"), upright."""
    return read_pixels(path, mode)


def load_batch(pairs: list[tuple], size: tuple[int, int] | None = None, reference: Path | None = None):
    """(pred, target, mask or None) float batches in [0, 1] (mask 0/1, (N, 1, H, W)) of ``pairs``;
    every image must be ``size`` (H, W), the size of the file ``reference`` (default: the first
    target's)."""
    preds, targets, masks = [], [], []
    reference = reference or pairs[0][2]
    for name, pp, tp, mp in pairs:
        t = read_image(tp)
        size = size or tuple(t.shape[1:])
        items = [("target", tp, t), ("pred", pp, read_image(pp))]
        if mp is not None:
            items.append(("mask", mp, read_image(mp, "L")))
        for role, path, img in items:
            if tuple(img.shape[1:]) != tuple(size):
                raise ValueError(f"eval: {role} image {path} is {img.shape[2]}x{img.shape[1]}, but the images "
                                 f"are {size[1]}x{size[0]} (width x height, as {reference})")
        targets.append(t)
        preds.append(items[1][2])
        if mp is not None:
            masks.append((items[2][2] > 127).float())
    pred = torch.stack(preds).float() / 255
    target = torch.stack(targets).float() / 255
    return pred, target, (torch.stack(masks) if masks else None)
