"""Occluded training pairs on disk (``fastgan occlude``) and a grid of every occlusion kind.

``occlude_folder(src, dst, kind)`` writes, for every image NAME of ``src``:

- ``dst/occluded/NAME.png``: the occluded image,
- ``dst/mask/NAME.png``: the binary mask, 255 where occluded, 0 elsewhere (8-bit grey),
- ``dst/target/NAME.png``: the clean image at the same size,

which is the layout ``PairedFolder`` reads. The bytes depend only on the source images and the
options (kind, size, seed, batch): the same command writes identical files.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from fastgan.data.cache import default_threads
from fastgan.data.datasets import CelebA, ImageFolder, SyntheticFaces, data_layout, describe_skipped, readable_batch
from fastgan.data.io import is_image_name, list_files, make_grid, write_png
from fastgan.data.loader import derive_seed
from fastgan.data.occlusion import KINDS, make_occluder


def open_source(src: str, size: int, count: int | None = None, quiet: bool = False):
    """(dataset, names) for ``src``: an image folder, a CelebA layout (its landmarks are used
    when present) or "synthetic" (``count`` procedural faces, 64 by default)."""
    if src == "synthetic":
        ds = SyntheticFaces(count or 64, size, seed=0)
        return ds, [f"synthetic_{i:06d}" for i in range(len(ds))]
    root = Path(src)
    if root.is_dir() and data_layout(src) == "celeba":
        ds = CelebA(root, "all", size, quiet=quiet)
        names = [r[0].relative_to(ds.image_dir).with_suffix("").as_posix() for r in ds.records]
    else:
        files = None
        if count is not None:  # only the first ``count`` images: no need to look at the rest
            files = [f.relative_to(root).as_posix() for f in list_files(root) if is_image_name(f)][:count]
        ds = ImageFolder(root, size, files=files, quiet=quiet)
        names = [Path(nm).with_suffix("").as_posix() for nm in ds.names]
    return ds, names


def _unique(names: list[str]) -> list[str]:
    """a.jpg and a.png both become a.png: keep them apart as a.png and a_1.png."""
    seen: dict[str, int] = {}
    out = []
    for nm in names:
        if nm in seen:
            seen[nm] += 1
            nm = f"{nm}_{seen[nm]}"
        seen.setdefault(nm, 0)
        out.append(nm)
    return out


def occlude_folder(src: str, dst: str | Path, kind: str = "mix", *, size: int = 128, seed: int = 0,
                   limit: int | None = None, batch: int = 32, options: dict | None = None,
                   log=print) -> int:
    """Write dst/occluded, dst/mask and dst/target PNGs for the images of ``src`` (the first
    ``limit`` of them in sorted order, if given). Returns the number of images written."""
    occluder = make_occluder(kind, **(options or {}))
    ds, names = open_source(src, size, limit)
    n = len(ds) if limit is None else min(limit, len(ds))
    names = _unique(names[:n])
    dst = Path(dst)
    start = time.perf_counter()
    # PNG encoding releases the GIL: the files of one batch are written by threads while the
    # next batch is occluded (the bytes do not depend on the order)
    with ThreadPoolExecutor(default_threads()) as pool:
        pending = []
        written = 0
        for b, lo in enumerate(range(0, n, batch)):
            items, idx = readable_batch(ds, range(lo, min(n, lo + batch)))
            if not idx:
                continue
            images = items["image"]
            occluded, mask = occluder(images, generator=torch.Generator().manual_seed(derive_seed(seed, b)),
                                      landmarks=items.get("landmarks"))
            for f in pending:
                f.result()
            pending = []
            for j, i in enumerate(idx):
                for folder, img in (("occluded", occluded[j]), ("mask", mask[j] * 255), ("target", images[j])):
                    pending.append(pool.submit(write_png, dst / folder / f"{names[i]}.png", img))
            written += len(idx)
        for f in pending:
            f.result()
    took = time.perf_counter() - start
    skipped = getattr(ds, "skipped", [])
    if not written:
        raise ValueError(f"occlude: no readable images in {src}: skipped {len(skipped)} files: "
                         f"{describe_skipped(skipped)}")
    log(f"occlude: {written} images ({kind}, {size}x{size}, seed {seed}) -> {dst}/{{occluded,mask,target}} "
        f"in {took:.1f} s ({written / max(took, 1e-9):.0f} img/s)"
        + (f"; skipped {len(skipped)} unreadable files: {describe_skipped(skipped)}" if skipped else ""))
    return written


def kinds_grid(src: str, path: str | Path, *, size: int = 128, seed: int = 0, count: int = 8,
               kinds=KINDS, log=print) -> Path:
    """A PNG grid of the first ``count`` images of ``src``: a row of the clean images, then for
    every kind a row of occluded images and a row of their masks (white = occluded)."""
    ds, _ = open_source(src, size, count, quiet=True)
    count = min(count, len(ds))
    items = ds.get_batch(list(range(count)))
    images = items["image"].float() / 255
    lm = items.get("landmarks")
    rows = [images]
    for k, kind in enumerate(kinds):
        occluded, mask = make_occluder(kind)(images, generator=torch.Generator().manual_seed(derive_seed(seed, k)),
                                             landmarks=lm)
        rows += [occluded, mask.expand(-1, 3, -1, -1)]
    path = Path(path)
    write_png(path, make_grid(torch.cat(rows), nrow=count))
    log(f"grid: {count} images x (clean + {len(kinds)} kinds: {', '.join(kinds)}; occluded and mask rows) -> {path}")
    return path
