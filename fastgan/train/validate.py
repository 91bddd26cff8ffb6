"""Held-out quality and sample grids.

``evaluate`` reconstructs the held-out images (eval mode, no gradient, the same occlusions
every time: the loader's epoch 0) and reports the mean per-image SSIM and PSNR of the full
image and of the occluded region (``fg.ssim``/``fg.psnr`` with the mask; images whose mask
is empty do not count there). A model that predicts the mask is not given it. ``write_samples`` saves a grid with one row per image:
occluded | output | target."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch

import fastgan as fg
from fastgan.data import make_grid, write_png

__all__ = ["evaluate", "write_samples", "batch_views"]


def batch_views(recipe, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input, mask, target) of a loader batch in [0, 1], as the recipe reconstructs them."""
    b = recipe.prepare(batch)
    return (b["input"] + 1) * 0.5, b["mask"], (b["target"] + 1) * 0.5


def _given_mask(recipe, mask: torch.Tensor) -> torch.Tensor | None:
    """What inference is given: nothing for a model that predicts the mask itself, as
    ``fastgan infer`` without ``--mask`` (the honest figure: the mask is not known there)."""
    return None if recipe.infers_mask else mask


@contextlib.contextmanager
def eval_mode(nets: dict):
    """Every net in eval mode for the block, then each back in the mode it had."""
    modes = {name: net.training for name, net in nets.items()}
    for net in nets.values():
        net.eval()
    try:
        yield
    finally:
        for name, net in nets.items():
            net.train(modes[name])


@torch.no_grad()
def evaluate(recipe, loader, limit: int | None = None) -> dict[str, float]:
    sums = {"ssim": 0.0, "psnr": 0.0, "ssim_occluded": 0.0, "psnr_occluded": 0.0}
    n_full = n_occ = 0
    with eval_mode(recipe.nets):
        loader.set_epoch(0)
        for batch in loader:
            occluded, mask, target = batch_views(recipe, batch)
            if limit is not None and n_full >= limit:
                break
            if limit is not None:
                keep = limit - n_full
                occluded, mask, target = occluded[:keep], mask[:keep], target[:keep]
            out = recipe.reconstruct(occluded, _given_mask(recipe, mask)).float()
            target = target.float()
            sums["ssim"] += fg.ssim(out, target, reduction="none").sum().item()
            sums["psnr"] += fg.psnr(out, target, reduction="none").clamp(max=100).sum().item()
            n_full += out.shape[0]
            has = mask.flatten(1).sum(1) > 0
            if bool(has.any()):
                o, t, m = out[has], target[has], mask[has].float()
                sums["ssim_occluded"] += fg.ssim(o, t, mask=m, reduction="none").sum().item()
                sums["psnr_occluded"] += fg.psnr(o, t, mask=m, reduction="none").clamp(max=100).sum().item()
                n_occ += int(has.sum())
    out = {"val_ssim": sums["ssim"] / max(n_full, 1), "val_psnr": sums["psnr"] / max(n_full, 1)}
    if n_occ:
        out["val_ssim_occluded"] = sums["ssim_occluded"] / n_occ
        out["val_psnr_occluded"] = sums["psnr_occluded"] / n_occ
    out["val_images"] = n_full
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else float("nan")) for k, v in out.items()}


@torch.no_grad()
def write_samples(recipe, batch: dict, path: str | Path, rows: int) -> Path:
    """A PNG grid: one row per image, occluded | output | target."""
    with eval_mode(recipe.nets):
        occluded, mask, target = batch_views(recipe, batch)
        occluded, mask, target = occluded[:rows], mask[:rows], target[:rows]
        out = recipe.reconstruct(occluded, _given_mask(recipe, mask))
    tiles = torch.stack([occluded.float(), out.float(), target.float()], 1).flatten(0, 1)
    path = Path(path)
    write_png(path, make_grid(tiles.cpu(), nrow=3))
    return path
