"""Evaluation groups: per occlusion kind and per mask-area bin, on fixed-seed evaluation masks.

Masks: the images of an evaluation set are occluded in chunks of ``MASK_CHUNK`` (64) images, chunk
c of kind K with the seed ``derive_seed(seed, crc32(K), c)``. The masks therefore depend only on
(data, image size, kind, seed), not on the batch size, the device batch or the other kinds
evaluated in the same run: two runs on the same data compare image for image.

Area bins: the occluded fraction of the image in bins of 10 %: "0-10%", "10-20%", ..., "90-100%"
(a bin holds [lo, hi); 100 % goes in the last one). Summaries are means over the images of a
group; masked metrics are NaN for images with nothing occluded and are averaged over the others
(``masked_count`` says over how many).
"""

from __future__ import annotations

import math
import zlib

import torch

from fastgan.data.loader import derive_seed
from fastgan.data.occlusion import make_occluder

MASK_CHUNK = 64
BIN_WIDTH = 10  # percent
AREA_BINS = tuple(f"{lo}-{lo + BIN_WIDTH}%" for lo in range(0, 100, BIN_WIDTH))


def kind_seed(kind: str, seed: int = 0) -> int:
    """A seed for ``kind`` that is the same on every machine and Python run (crc32, not hash())."""
    return derive_seed(seed, zlib.crc32(kind.encode()))


def occlude_chunk(images: torch.Tensor, kind: str, chunk: int, seed: int = 0, landmarks=None,
                  occluder=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(occluded, mask) for chunk number ``chunk`` (images chunk * MASK_CHUNK onwards) of ``kind``."""
    if images.shape[0] > MASK_CHUNK:
        raise ValueError(f"occlude_chunk: a chunk holds at most {MASK_CHUNK} images, got {images.shape[0]}")
    occ = occluder or make_occluder(kind)
    g = torch.Generator().manual_seed(derive_seed(kind_seed(kind, seed), chunk))
    return occ(images, generator=g, landmarks=landmarks)


def area_bin(area: float) -> str:
    """The label of the bin of an occluded fraction in [0, 1]."""
    if not 0 <= area <= 1:
        raise ValueError(f"area_bin: the occluded fraction must be in [0, 1], got {area}")
    return AREA_BINS[min(int(round(area * 100, 9) // BIN_WIDTH), len(AREA_BINS) - 1)]  # round: a product just under an edge


def summarise(per_image: dict, index=None) -> dict:
    """Means of every per-image metric (NaN-free values only for masked_*), with counts."""
    out = {}
    n = None
    for name, values in per_image.items():
        v = torch.as_tensor(values, dtype=torch.float64)
        if index is not None:
            v = v[index]
        n = len(v)
        ok = v[~torch.isnan(v)]
        out[name] = float(ok.mean()) if len(ok) else math.nan
        if name == "masked_ssim":
            out["masked_count"] = len(ok)
    out["count"] = n or 0
    return out


def group_summaries(per_image: dict, kinds: list[str], areas=None) -> dict:
    """{"kind": {kind: summary}, "area": {bin: summary}, "kind_area": {kind: {bin: summary}}}:
    the groups that hold at least one image, in KINDS / AREA_BINS order. ``areas``: the occluded
    fraction of each image (None: no area groups)."""
    kinds = list(kinds)
    order = list(dict.fromkeys(kinds))
    out = {"kind": {}}
    for k in order:
        out["kind"][k] = summarise(per_image, torch.tensor([x == k for x in kinds]))
    if areas is None:
        return out
    bins = [area_bin(float(a)) for a in areas]
    out["area"] = {}
    out["kind_area"] = {k: {} for k in order}
    for b in AREA_BINS:
        sel = torch.tensor([x == b for x in bins])
        if sel.any():
            out["area"][b] = summarise(per_image, sel)
        for k in order:
            both = sel & torch.tensor([x == k for x in kinds])
            if both.any():
                out["kind_area"][k][b] = summarise(per_image, both)
    return out
