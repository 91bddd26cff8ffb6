"""The device loader: batch shapes and dtypes, determinism per seed whatever the worker count,
epochs, occlusion on the fly, and real faces when they are present."""

import pytest
import torch

from fastgan.data import CelebA, FaceLoader, ImageFolder, SyntheticFaces
from fastgan.data.datasets import SHARED_FACES_SPLIT
from fastgan.data.loader import epoch_order


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def faces():
    return SyntheticFaces(24, 32, seed=0, cache="memory")


def _collect(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def test_batches_shapes_and_dtypes(faces):
    loader = FaceLoader(faces, 8, device="cpu", workers=0, occlusion="nose-mask")
    assert len(loader) == 3
    batches = _collect(loader)
    assert len(batches) == 3
    b = batches[0]
    assert set(b) == {"image", "landmarks", "occluded", "mask"}
    assert b["image"].shape == (8, 3, 32, 32) and b["image"].dtype == torch.float32
    assert b["occluded"].dtype == torch.float32 and b["mask"].shape == (8, 1, 32, 32)
    assert set(b["mask"].unique().tolist()) <= {0.0, 1.0} and b["mask"].sum() > 0
    assert 0 <= b["image"].min() and b["image"].max() <= 1
    keep = b["mask"].expand_as(b["image"]) == 0
    assert torch.equal(b["occluded"][keep], b["image"][keep])
    # every item once per epoch
    seen = torch.cat([x["landmarks"][:, 0, 0] for x in batches])
    assert len(set(seen.tolist())) == 24


def test_deterministic_per_seed_and_worker_count(faces):
    a = _collect(FaceLoader(faces, 8, device="cpu", workers=0, seed=3, occlusion="mix"))
    b = _collect(FaceLoader(faces, 8, device="cpu", workers=2, seed=3, occlusion="mix"))
    for x, y in zip(a, b):
        for k in x:
            assert torch.equal(x[k], y[k]), k
    c = _collect(FaceLoader(faces, 8, device="cpu", workers=0, seed=4, occlusion="mix"))
    assert not torch.equal(a[0]["image"], c[0]["image"])


def test_epochs_reshuffle_and_set_epoch(faces):
    loader = FaceLoader(faces, 8, device="cpu", workers=0, seed=0)
    e0, e1 = _collect(loader), _collect(loader)
    assert not torch.equal(e0[0]["image"], e1[0]["image"])
    loader.set_epoch(0)
    again = _collect(loader)
    assert torch.equal(again[0]["image"], e0[0]["image"])
    assert torch.equal(epoch_order(10, 1, 2), epoch_order(10, 1, 2))
    assert torch.equal(epoch_order(5, 1, 2, shuffle=False), torch.arange(5))


def test_partial_last_batch_and_options(faces):
    loader = FaceLoader(faces, 10, device="cpu", workers=0, shuffle=False, drop_last=False,
                        channels_last=True, dtype=torch.float64)
    batches = _collect(loader)
    assert [len(b["image"]) for b in batches] == [10, 10, 4]
    assert batches[0]["image"].dtype == torch.float64
    assert batches[0]["image"].is_contiguous(memory_format=torch.channels_last)
    first = faces.get_batch(range(10))["image"].double() / 255
    assert torch.equal(batches[0]["image"], first)


def test_bad_arguments(faces):
    with pytest.raises(ValueError, match="batch_size"):
        FaceLoader(faces, 0)
    with pytest.raises(ValueError, match="no full batch"):
        FaceLoader(faces, 100)
    with pytest.raises(ValueError, match="occlusion kind"):
        FaceLoader(faces, 4, occlusion="scarf")


def test_uncached_folder_with_workers(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    import numpy as np
    for i in range(6):
        Image.fromarray(np.full((20, 30, 3), i * 40, np.uint8)).save(tmp_path / f"{i}.png")
    ds = ImageFolder(tmp_path, 16)
    got = _collect(FaceLoader(ds, 3, device="cpu", workers=1, shuffle=False, occlusion="square"))
    assert torch.allclose(got[1]["image"][0], torch.full((3, 16, 16), 120 / 255))


def test_real_faces(faces_dir):
    pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    ds = CelebA(faces_dir, "test", 64, ranges=SHARED_FACES_SPLIT)
    loader = FaceLoader(ds, 16, device="cpu", workers=0, occlusion="nose-mask")
    b = next(iter(loader))
    assert b["image"].shape == (16, 3, 64, 64) and b["mask"].sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_batches_on_device(faces):
    loader = FaceLoader(faces, 8, device="cuda", occlusion="mix", seed=1)
    assert loader.workers == 0  # cached: the main process keeps up
    b = next(iter(loader))
    assert all(v.device.type == "cuda" for v in b.values())
    cpu = next(iter(FaceLoader(faces, 8, device="cpu", workers=0, occlusion="mix", seed=1)))
    assert torch.equal(b["image"].cpu(), cpu["image"])
    assert (b["mask"].cpu() != cpu["mask"]).float().mean() < 0.01
