"""Reconstruction with a trained checkpoint (what ``fastgan infer`` and the evaluation use).

>>> rec = load_reconstructor("runs/x/checkpoints/best.pt")
>>> out = rec(occluded, mask)      # (N, 3, S, S) in [0, 1] -> (N, 3, S, S) in [0, 1]
"""

from __future__ import annotations

from pathlib import Path

import torch

from fastgan.train.checkpoint import CheckpointError, inference_weights_name, load_checkpoint, load_weights
from fastgan.train.config import TrainConfig
from fastgan.train.recipes import RECIPES

__all__ = ["Reconstructor", "load_reconstructor", "reconstruct_folder"]


class Reconstructor:
    """A trained generator in eval mode. ``size``, ``recipe``, ``occlusion``, ``config``.
    Called with the occluded images and optionally their masks; a model that predicts the
    mask (pix2pix's default) uses a given one instead of its own."""

    def __init__(self, state: dict, device="cpu"):
        where = state.get("path", "the checkpoint")
        if not isinstance(state.get("config"), dict):
            raise CheckpointError(f"{where} holds no training configuration")
        cfg = TrainConfig.from_saved(state["config"])
        if cfg.recipe not in RECIPES:
            raise CheckpointError(f"{where}: unknown recipe {cfg.recipe!r}")
        cfg.parsing_weight = 0.0          # the parser only shapes training
        self.device = torch.device(device)
        self.config = dict(state["config"])
        self.size, self.recipe, self.occlusion = cfg.size, cfg.recipe, cfg.occlusion
        self.step = int(state.get("step", 0))
        recipe = RECIPES[cfg.recipe](cfg, self.device)
        nets = recipe.build()
        gen = nets[recipe.generator]
        load_weights(gen, state, inference_weights_name(state, recipe.generator))
        gen.to(self.device).eval()
        recipe.nets = {recipe.generator: gen}
        self._recipe = recipe
        self.uses_mask = bool(recipe.uses_mask)

    @torch.no_grad()
    def __call__(self, occluded: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(occluded, torch.Tensor) or occluded.dim() != 4 or occluded.shape[1] != 3:
            got = tuple(occluded.shape) if isinstance(occluded, torch.Tensor) else type(occluded).__name__
            raise ValueError(f"Reconstructor: occluded must be (N, 3, S, S), got {got}")
        n, _, h, w = occluded.shape
        if (h, w) != (self.size, self.size):
            raise ValueError(f"Reconstructor: images must be {self.size}x{self.size} (the model size), got {h}x{w}")
        if mask is None and self.uses_mask:
            raise ValueError(f"Reconstructor: the {self.recipe} model needs the occlusion mask")
        if mask is not None and mask.shape != (n, 1, h, w):
            raise ValueError(f"Reconstructor: mask must be (N, 1, {h}, {w}), got {tuple(mask.shape)}")
        x = occluded.to(self.device, torch.float32)
        m = None if mask is None else (mask.to(self.device) > 0.5).float()
        return self._recipe.reconstruct(x, m)   # no mask: the model's own (or none)

    def __repr__(self) -> str:
        return f"Reconstructor({self.recipe}, size={self.size}, occlusion={self.occlusion}, step={self.step})"


def load_reconstructor(checkpoint_path, device="cpu") -> Reconstructor:
    """The generator of a training checkpoint (a file, or a run's checkpoints/ folder: its latest)."""
    return Reconstructor(load_checkpoint(checkpoint_path, map_location="cpu"), device)


def reconstruct_folder(checkpoint, src, dst, mask_dir=None, *, device="cpu", batch: int = 16,
                       log=print) -> list[Path]:
    """Every image of ``src`` (centre-cropped and resized to the model size) reconstructed into
    ``dst/NAME.png``; masks (255 = occluded) from ``mask_dir`` by the same relative name.
    Unreadable images are skipped and named in one ``log`` line."""
    from fastgan.data import ImageFolder, write_png
    from fastgan.data.datasets import describe_skipped
    from fastgan.data.io import decode, list_files

    rec = checkpoint if isinstance(checkpoint, Reconstructor) else load_reconstructor(checkpoint, device)
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ValueError(f"infer: {str(src)!r} is not a folder")
    if rec.uses_mask and mask_dir is None:
        raise ValueError(f"infer: the {rec.recipe} model fills the occluded region: give --mask DIR")
    ds = ImageFolder(src, rec.size, quiet=True)
    names = ds.names
    masks = None
    if mask_dir is not None:
        mask_dir = Path(mask_dir)
        by_stem = {p.relative_to(mask_dir).with_suffix("").as_posix(): p for p in list_files(mask_dir, True)}
        masks = []
        for name in names:
            stem = Path(name).with_suffix("").as_posix()
            if stem not in by_stem:
                raise ValueError(f"infer: no mask for {name} in {mask_dir}")
            masks.append(stem)
    written = []
    for start in range(0, len(ds), batch):
        items, idx = ds.readable_batch(range(start, min(len(ds), start + batch)))   # unreadable: left out
        if not idx:
            continue
        images = items["image"].float().div(255)
        if masks is not None:
            m = torch.stack([(decode(by_stem[masks[i]], rec.size, mode="L", resample="nearest")[0] > 127)
                             for i in idx]).float()
        else:
            m = None
        out = rec(images, m).cpu()
        for j, i in enumerate(idx):
            path = dst / Path(names[i]).with_suffix(".png")
            write_png(path, out[j])
            written.append(path)
    if not written:
        raise ValueError(f"infer: no readable images in {src}: skipped {len(ds.skipped)} files: "
                         f"{describe_skipped(ds.skipped)}")
    if ds.skipped:
        log(f"infer: skipped {len(ds.skipped)} unreadable files: {describe_skipped(ds.skipped)}")
    return written
