"""The data loader alone, in images per second: batches of 64 at 128x128 with occlusion on the
fly, delivered as float tensors on the device, on the real faces (../shared/data, skipped when
absent) and on procedural synthetic faces.

impls:
- fastgan: ``FaceLoader`` over a memory-cached dataset (decoded once, a batch is one gather),
  occlusion batched (on the device; on the CPU in the workers).
- fastgan-uncached: ``FaceLoader`` decoding every batch in worker processes.
- per-item-dataloader: what is commonly written instead: a Dataset that opens, crops and
  resizes one image per ``__getitem__`` with Pillow, ``DataLoader`` collation, float on the CPU,
  then the same occlusion on the batch.
- synthetic rendered on the fly: ``SyntheticFaces`` without a cache (the renderer's speed).

The img/s of each entry is in bench/results/<device>-latest.json ("img_per_s").
Run: python -m pytest bench/test_bench_loader.py --benchmark-only
"""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from conftest import synchronized
from fastgan.data import CelebA, FaceLoader, SyntheticFaces, make_occluder
from fastgan.data.datasets import SHARED_FACES_SPLIT

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "celeba-89x109"
SIZE, BATCH, BATCHES = 128, 64, 8
WORKERS = 2
OCCLUSION = "mix"


class PerItemFolder(Dataset):
    """The usual hand-written dataset: one Pillow decode, crop and resize per item."""

    def __init__(self, files, size):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            im = im.convert("RGB")
            w, h = im.size
            m = min(w, h)
            left, top = (w - m) // 2, (h - m) // 2
            im = im.crop((left, top, left + m, top + m)).resize((self.size, self.size), Image.Resampling.BICUBIC)
            return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float().div(255)


def _real_files():
    if not DATA_DIR.is_dir():
        pytest.skip(f"real face data not found at {DATA_DIR}")
    return [DATA_DIR / f"{i:06d}.jpg" for i in range(1, 8001)]


def _run(benchmark, group, impl, device, step, images):
    step()  # warm-up: workers started, caches touched
    benchmark.group = group
    benchmark.extra_info.update(impl=impl, images=images)
    benchmark.pedantic(synchronized(step, device), rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["img_per_s"] = images / benchmark.stats.stats.median


def _loader_step(loader):
    def step():
        for batch in itertools.islice(iter(loader), BATCHES):
            last = batch["occluded"]
        return last
    return step


@pytest.fixture(scope="module")
def real_cached():
    _real_files()
    return CelebA(DATA_DIR, "train", SIZE, ranges=SHARED_FACES_SPLIT, cache="memory")


@pytest.mark.parametrize("impl", ["fastgan", "fastgan-uncached", "per-item-dataloader"])
def test_loader_real_faces(benchmark, device, impl, request):
    group = f"loader real faces {SIZE}px batch {BATCH} occlusion={OCCLUSION} {device}"
    if impl == "fastgan":
        ds = request.getfixturevalue("real_cached")
        loader = FaceLoader(ds, BATCH, device=device, occlusion=OCCLUSION, seed=0)
        step = _loader_step(loader)
    elif impl == "fastgan-uncached":
        _real_files()
        ds = CelebA(DATA_DIR, "train", SIZE, ranges=SHARED_FACES_SPLIT)
        loader = FaceLoader(ds, BATCH, device=device, occlusion=OCCLUSION, seed=0, workers=WORKERS)
        step = _loader_step(loader)
    else:
        files = _real_files()
        dl = DataLoader(PerItemFolder(files, SIZE), batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                        pin_memory=device == "cuda", persistent_workers=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
        occluder = make_occluder(OCCLUSION)
        g = torch.Generator().manual_seed(0)

        def step():
            for images in itertools.islice(iter(dl), BATCHES):
                images = images.to(device, non_blocking=True)
                last, _ = occluder(images, generator=g)
            return last
    _run(benchmark, group, impl, device, step, BATCH * BATCHES)


@pytest.mark.parametrize("impl", ["fastgan", "per-item-dataloader"])
def test_loader_real_faces_no_occlusion(benchmark, device, impl, request):
    """The loading alone: decoded, batched, float on the device."""
    group = f"loader real faces {SIZE}px batch {BATCH} occlusion=none {device}"
    if impl == "fastgan":
        loader = FaceLoader(request.getfixturevalue("real_cached"), BATCH, device=device, seed=0)

        def step():
            for batch in itertools.islice(iter(loader), BATCHES):
                last = batch["image"]
            return last
    else:
        dl = DataLoader(PerItemFolder(_real_files(), SIZE), batch_size=BATCH, shuffle=True,
                        num_workers=WORKERS, pin_memory=device == "cuda", persistent_workers=True,
                        drop_last=True, generator=torch.Generator().manual_seed(0))

        def step():
            for images in itertools.islice(iter(dl), BATCHES):
                last = images.to(device, non_blocking=True)
            return last
    _run(benchmark, group, impl, device, step, BATCH * BATCHES)


@pytest.mark.parametrize("impl", ["fastgan", "synthetic-rendered-on-the-fly"])
def test_loader_synthetic_faces(benchmark, device, impl):
    group = f"loader synthetic faces {SIZE}px batch {BATCH} occlusion={OCCLUSION} {device}"
    n = BATCH * BATCHES
    if impl == "fastgan":
        ds = SyntheticFaces(n, SIZE, seed=0, cache="memory")
        loader = FaceLoader(ds, BATCH, device=device, occlusion=OCCLUSION, seed=0)
    else:
        ds = SyntheticFaces(n, SIZE, seed=0)
        loader = FaceLoader(ds, BATCH, device=device, occlusion=OCCLUSION, seed=0, workers=WORKERS)
    _run(benchmark, group, impl, device, _loader_step(loader), n)
