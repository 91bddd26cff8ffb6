"""Batches from a face dataset to the device: worker processes, pinned memory, float
conversion and occlusion on the device.

>>> loader = FaceLoader(CelebA(root, "train", 128, cache="memory"), batch_size=64,
...                     occlusion="nose-mask", seed=0)
>>> for batch in loader:        # {"image", "occluded", "mask", "landmarks"} on the device
...     ...

How it is fast: a whole batch is one work item (``dataset.get_batch``: with a cache, one gather
from a uint8 tensor, no decoding, no Python per image), uint8 crosses process boundaries and
the PCIe bus (a quarter of float32's bytes) from pinned memory without blocking, and the
conversion to float and the occlusion run batched on the device, the next batch's copy issued
before the current one is handed over.

Determinism: the order of epoch e is a permutation drawn from (seed, e), batch b's occlusion
uses a generator seeded from (seed, e, b); neither depends on the number of workers or the
device (per-pixel noise aside, see ``fastgan.data.occlusion``). Iterating the loader again
starts the next epoch; ``set_epoch`` chooses one.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fastgan.data.datasets import get_batch
from fastgan.data.occlusion import Occluder, make_occluder


def derive_seed(*values: int) -> int:
    """A 62-bit seed from integers (splitmix64 steps), stable across runs and machines."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x >> 2


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The item order of an epoch: a permutation drawn from (seed, epoch), or 0..n-1."""
    if not shuffle:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))


class _EpochSampler(Sampler):
    """Yields (epoch, batch number) keys; the epoch is set before each pass."""

    def __init__(self, n_batches: int):
        self.n_batches, self.epoch = n_batches, 0

    def __iter__(self):
        return iter([(self.epoch, b) for b in range(self.n_batches)])

    def __len__(self) -> int:
        return self.n_batches


class _Batches(Dataset):
    """Item (epoch, b) is batch b of that epoch, assembled by the dataset (in a worker)."""

    def __init__(self, dataset, batch_size: int, seed: int, shuffle: bool, drop_last: bool,
                 occluder: Occluder | None, image_key: str, landmarks_key: str):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.occluder, self.image_key, self.landmarks_key = occluder, image_key, landmarks_key
        self._order: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else (n + b - 1) // b

    def indices(self, epoch: int, b: int) -> torch.Tensor:
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.dataset), self.seed, epoch, self.shuffle))
        return self._order[1][b * self.batch_size:(b + 1) * self.batch_size]

    def __getitem__(self, key):
        epoch, b = key
        batch = get_batch(self.dataset, self.indices(epoch, b))
        if self.occluder is not None:  # CPU device: occlude here, in the worker, on uint8
            occlude_batch(batch, self.occluder, derive_seed(self.seed, epoch, b), self.image_key, self.landmarks_key)
        return batch


def occlude_batch(batch: dict, occluder: Occluder, seed: int, image_key: str = "image",
                  landmarks_key: str = "landmarks") -> dict:
    """Add "occluded" and "mask" to ``batch`` from ``batch[image_key]`` (and its landmarks)."""
    if image_key not in batch:
        raise KeyError(f"occlusion needs the batch key {image_key!r}; the batch has {sorted(batch)}")
    g = torch.Generator().manual_seed(seed)
    batch["occluded"], batch["mask"] = occluder(batch[image_key], generator=g, landmarks=batch.get(landmarks_key))
    return batch


def default_workers(cached: bool, device: torch.device) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cached and device.type == "cuda":
        return 0  # a batch is one gather: the main process keeps up with the GPU
    return max(0, min(8, cpus - 1))


class FaceLoader:
    """Batches of ``dataset`` on ``device`` as dicts of float tensors in [0, 1] (uint8 images
    converted; masks exactly 0/1), with "occluded" and "mask" added when ``occlusion`` (a kind
    name or an ``Occluder``) is given.

    workers: worker processes ("auto": none for a cached dataset feeding a GPU, else up to the
    CPU count - 1); pin_memory: default on for CUDA; channels_last: the memory layout of the
    image tensors on the device; dtype: their float dtype."""

    def __init__(self, dataset, batch_size: int = 64, *, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0, device=None, workers="auto", pin_memory: bool | None = None,
                 occlusion: str | Occluder | None = None, image_key: str = "image",
                 landmarks_key: str = "landmarks", dtype: torch.dtype = torch.float32,
                 channels_last: bool = False, prefetch: int = 2, **occlusion_options):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"FaceLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if len(dataset) == 0:
            raise ValueError("FaceLoader: the dataset is empty")
        if drop_last and len(dataset) < batch_size:
            raise ValueError(f"FaceLoader: {len(dataset)} items make no full batch of {batch_size} "
                             "(use drop_last=False or a smaller batch)")
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if isinstance(occlusion, str):
            occlusion = make_occluder(occlusion, **occlusion_options)
        elif occlusion_options:
            raise ValueError("FaceLoader: occlusion options need an occlusion kind name")
        self.occluder = occlusion
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.dtype, self.channels_last, self.image_key = dtype, channels_last, image_key
        self.landmarks_key = landmarks_key
        self.workers = default_workers(bool(getattr(dataset, "cached", False)), self.device) if workers == "auto" else int(workers)
        on_cpu = self.device.type == "cpu"
        self._batches = _Batches(dataset, batch_size, seed, shuffle, drop_last,
                                 occlusion if on_cpu else None, image_key, landmarks_key)
        self._sampler = _EpochSampler(len(self._batches))
        pin = (self.device.type == "cuda") if pin_memory is None else pin_memory
        # Its own generator: each new iterator draws a base seed, which from the global RNG
        # would shift the model's random stream (dropout) by when an epoch or a validation
        # pass starts, and break an exact resume. Order and occlusions come from our seeds.
        self._loader = DataLoader(
            self._batches, batch_size=None, sampler=self._sampler, num_workers=self.workers,
            generator=torch.Generator(),
            pin_memory=pin, persistent_workers=self.workers > 0,
            prefetch_factor=prefetch if self.workers > 0 else None)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self._batches)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _to_device(self, batch):
        if batch is None:
            return None
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}

    def _finish(self, batch: dict, b: int, epoch: int) -> dict:
        if self.occluder is not None and "occluded" not in batch:  # GPU: occlude on the device
            batch[self.image_key] = self._float(batch[self.image_key])
            occlude_batch(batch, self.occluder, derive_seed(self.seed, epoch, b), self.image_key, self.landmarks_key)
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor) and v.dim() == 4:
                v = (v > 0).to(self.dtype) if k == "mask" or k.endswith("_mask") else self._float(v)
                if self.channels_last:
                    v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def _float(self, v: torch.Tensor) -> torch.Tensor:
        if v.dtype == torch.uint8:
            return v.to(self.dtype).div_(255)
        return v.to(self.dtype)

    def __iter__(self):
        epoch = self.epoch
        self._sampler.epoch = epoch
        self.epoch += 1
        it = iter(self._loader)
        nxt = self._to_device(next(it, None))
        b = 0
        while nxt is not None:
            cur = nxt
            nxt = self._to_device(next(it, None))  # the next copy is queued before this batch is used
            yield self._finish(cur, b, epoch)
            b += 1
