"""The training and held-out data of a run: datasets by name with a fixed split, the
loaders (occlusion on the device), a batch stream that can start at any step (exact resume),
and the per-process shard under torchrun.

Splits: "synthetic" draws the held-out faces from another seed; a CelebA layout uses its
partition file; a folder of numbered CelebA files without one (../shared/data) uses the
project split ``SHARED_FACES_SPLIT`` (000001-008000 train, 008001-009000 test); any other
image folder holds out the last 10 % of its sorted files (at most 1000)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from fastgan.data import SHARED_FACES_SPLIT, CelebA, FaceLoader, ImageFolder, PairedFolder, SyntheticFaces
from fastgan.data.datasets import TwoDomain, data_layout
from fastgan.data.io import list_files

__all__ = ["open_split", "make_loader", "BatchStream", "Shard"]

VALIDATION_SEED = 1_000_003   # synthetic held-out faces: a seed no training run uses
_NUMBERED = re.compile(r"^\d{6}\.(jpg|jpeg|png)$", re.IGNORECASE)


def _cache(cache: str):
    return None if cache == "none" else cache


def _numbered_celeba(root: Path) -> bool:
    names = [p.name for p in root.iterdir() if p.is_file()]
    numbered = [n for n in names if _NUMBERED.match(n)]
    return len(numbered) > 0 and len(numbered) >= 0.9 * len(names) and \
        any(int(n[:6]) >= SHARED_FACES_SPLIT["test"][0] for n in numbered)


def open_split(data: str, split: str, size: int, *, cache: str = "memory", seed: int = 0,
               synthetic_n: int = 2048, limit: int | None = None):
    """The ``split`` ("train" or "test") of ``data`` at ``size``."""
    if split not in ("train", "test"):
        raise ValueError(f"open_split: split must be train or test, got {split!r}")
    layout = data_layout(data)
    if layout == "synthetic":
        n = synthetic_n if split == "train" else (limit or 256)
        return SyntheticFaces(n, size, seed if split == "train" else VALIDATION_SEED, cache=_cache(cache))
    root = Path(data)
    if layout == "celeba":
        return CelebA(root, split, size, cache=_cache(cache))
    if layout == "paired":   # paired input/target(/mask) folders: no held-out split
        return PairedFolder(root, size, cache=_cache(cache))
    if _numbered_celeba(root):
        return CelebA(root, split, size, ranges=SHARED_FACES_SPLIT, cache=_cache(cache))
    files = [p.relative_to(root).as_posix() for p in list_files(root, True)]
    n_test = min(1000, max(1, len(files) // 10)) if len(files) > 1 else 0
    chosen = files[len(files) - n_test:] if split == "test" else files[:len(files) - n_test]
    if not chosen:
        raise ValueError(f"--data {data!r}: too few images for a {split} split ({len(files)} found)")
    return ImageFolder(root, size, files=chosen, cache=_cache(cache))


def simgan_domains(data: str, split: str, size: int, *, cache: str, seed: int, synthetic_n: int,
                   limit: int | None = None):
    """SimGAN's unpaired (synthetic, real) set: procedural faces and ``data`` (with
    ``data='synthetic'`` the "real" side is procedural faces of another seed)."""
    n = synthetic_n if split == "train" else (limit or 256)
    syn_seed = seed + 1 if split == "train" else VALIDATION_SEED + 1
    synthetic = SyntheticFaces(n, size, syn_seed, cache=_cache(cache))
    real = open_split(data, split, size, cache=cache, seed=seed + 2, synthetic_n=synthetic_n, limit=limit)
    return TwoDomain(synthetic, real, seed=seed)


class Shard(torch.utils.data.Dataset):
    """Items rank, rank + world, ... of ``dataset`` (the same count on every rank), keeping its
    batched ``get_batch`` and cache flag; DistributedSampler's split for a batch loader."""

    def __init__(self, dataset, rank: int, world: int):
        self.dataset, self.rank, self.world = dataset, rank, world
        self.n = len(dataset) // world
        if self.n == 0:
            raise ValueError(f"{len(dataset)} items cannot be split over {world} processes")

    def __len__(self) -> int:
        return self.n

    @property
    def cached(self) -> bool:
        return bool(getattr(self.dataset, "cached", False))

    def _map(self, indices) -> torch.Tensor:
        return torch.as_tensor(indices, dtype=torch.long) * self.world + self.rank

    def get_batch(self, indices):
        from fastgan.data.datasets import get_batch
        return get_batch(self.dataset, self._map(indices))

    def __getitem__(self, i: int):
        return self.dataset[int(self._map([i])[0])]


def make_loader(dataset, batch: int, *, device, occlusion: str, seed: int, train: bool,
                workers: int | None, channels_last: bool) -> FaceLoader:
    kind = None if occlusion == "none" else occlusion
    return FaceLoader(dataset, batch, shuffle=train, drop_last=train, seed=seed, device=device,
                      workers="auto" if workers is None else workers, occlusion=kind,
                      channels_last=channels_last)


class BatchStream:
    """Endless batches from ``start_step`` on: step s is batch s % len of epoch s // len, the
    same batch whether the run went straight through or was resumed."""

    def __init__(self, loader: FaceLoader, start_step: int = 0):
        self.loader = loader
        self.per_epoch = len(loader)
        self.epoch, self.skip = divmod(start_step, self.per_epoch)

    def __iter__(self):
        while True:
            self.loader.set_epoch(self.epoch)
            # the loader's DataLoader has its own generator: starting an epoch draws nothing
            # from the global RNG that dropout uses, so a resumed run draws what a straight one does
            for b, batch in enumerate(self.loader):
                if b >= self.skip:
                    yield batch
            self.skip = 0
            self.epoch += 1
