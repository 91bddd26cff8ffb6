"""Datasets on tiny generated folders: image folder (recursive, jpg/png/webp), bad files
skipped and counted, caches (memory and memory-mapped) equal to decoding, the CelebA layout
with its splits and landmarks, paired folders, synthetic faces and the two-domain set."""

import warnings

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")

from fastgan.data import (  # noqa: E402
    CelebA, ImageFolder, PairedFolder, SkippedFilesWarning, SyntheticFaces, TwoDomain, open_dataset)
from fastgan.data.datasets import SHARED_FACES_SPLIT  # noqa: E402
from fastgan.data.io import decode, normalise_points  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


def _save(path, w=40, h=50, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _folder(tmp_path):
    root = tmp_path / "imgs"
    _save(root / "a.jpg", seed=1)
    _save(root / "b.png", seed=2, w=50, h=40)
    _save(root / "sub" / "c.webp", seed=3)
    _save(root / "sub" / "deeper" / "d.JPEG", seed=4)
    _save(root / "e.png", seed=5, mode="L")  # grey: converted to RGB
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image at all")
    (root / "notes.txt").write_text("a text file")
    (root / ".hidden.jpg").write_text("ignored: hidden")
    good = root / "trunc_src.jpg"
    _save(good, w=64, h=64, seed=6)
    data = good.read_bytes()
    good.unlink()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])  # a good header, half the pixels
    return root


def test_image_folder_recursive_and_skips_bad_files(tmp_path):
    root = _folder(tmp_path)
    with pytest.warns(SkippedFilesWarning, match=r"skipped 3 of 9 files") as rec:
        ds = ImageFolder(root, size=32)
    assert len(rec) == 1  # reported once
    assert ds.names == ["a.jpg", "b.png", "e.png", "sub/c.webp", "sub/deeper/d.JPEG", "truncated.jpg"]
    reasons = dict(ds.skipped)
    assert set(map(lambda p: p.rsplit("/", 1)[-1], reasons)) == {"empty.jpg", "text.png", "notes.txt"}
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert ds[2]["image"].shape == (3, 32, 32)  # grey -> RGB
    # the truncated file passes the header check; reading it substitutes the next image,
    # records it and warns once
    with pytest.warns(SkippedFilesWarning, match="truncated.jpg"):
        sub = ds[5]
    assert torch.equal(sub["image"], ds[0]["image"])
    assert any("truncated.jpg" in p for p, _ in ds.skipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[5]  # known bad now: no second warning
    batch = ds.get_batch([0, 1, 2])
    assert batch["image"].shape == (3, 3, 32, 32)


def test_image_folder_memory_cache_finds_corrupt_files_upfront(tmp_path):
    root = _folder(tmp_path)
    with pytest.warns(SkippedFilesWarning, match=r"skipped 4 of 9 files") as rec:
        cached = ImageFolder(root, size=32, cache="memory")
    assert len(rec) == 1
    assert len(cached) == 5 and "truncated.jpg" not in cached.names
    with pytest.warns(SkippedFilesWarning):
        plain = ImageFolder(root, size=32)
    for i in range(5):
        assert torch.equal(cached[i]["image"], plain[i]["image"])
    b = cached.get_batch(torch.tensor([4, 0, 2]))
    assert torch.equal(b["image"][0], plain[4]["image"])


def test_disk_cache_is_memory_mapped_and_reused(tmp_path):
    root = tmp_path / "imgs"
    for i in range(5):
        _save(root / f"{i}.png", seed=i)
    path = tmp_path / "cache" / "faces.u8"
    ds = ImageFolder(root, size=24, cache=path)
    assert path.stat().st_size == 5 * 3 * 24 * 24 and not ds.cache.reused
    mem = ImageFolder(root, size=24, cache="memory")
    assert torch.equal(ds.get_batch(range(5))["image"], mem.get_batch(range(5))["image"])
    again = ImageFolder(root, size=24, cache=path)
    assert again.cache.reused and "reused" in again.report()
    assert torch.equal(again.get_batch(range(5))["image"], mem.get_batch(range(5))["image"])
    # another size or a changed source is not reused
    assert not ImageFolder(root, size=16, cache=tmp_path / "cache" / "faces.u8").cache.reused
    _save(root / "5.png", seed=9)
    assert not ImageFolder(root, size=24, cache=path).cache.reused
    # workers map the file again rather than receiving the array
    import pickle
    clone = pickle.loads(pickle.dumps(again))
    assert torch.equal(clone[3]["image"], again[3]["image"])


def test_decode_centre_crop_and_resize(tmp_path):
    arr = np.zeros((60, 40, 3), np.uint8)
    arr[10:50, :, 0] = 255  # the centre 40x40 square is red
    Image.fromarray(arr).save(tmp_path / "x.png")
    img, (w, h) = decode(tmp_path / "x.png", 20)
    assert (w, h) == (40, 60) and img.shape == (3, 20, 20)
    assert (img[0] == 255).all() and (img[1:] == 0).all()
    full, _ = decode(tmp_path / "x.png", None)
    assert full.shape == (3, 40, 40)


def test_all_bad_raises(tmp_path):
    (tmp_path / "x.jpg").write_text("nope")
    with pytest.warns(SkippedFilesWarning), pytest.raises(ValueError, match="no readable images"):
        ImageFolder(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolder(tmp_path / "missing")


def _celeba(tmp_path, with_landmarks=True):
    root = tmp_path / "celeba"
    for i in range(1, 7):
        _save(root / "img_align_celeba" / f"{i:06d}.jpg", w=36, h=44, seed=i)
    (root / "img_align_celeba" / "000007.jpg").write_text("corrupt")
    parts = {1: 0, 2: 0, 3: 0, 4: 1, 5: 2, 6: 2, 7: 0, 8: 0}  # 8 is listed but missing
    (root / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg {s}\n" for i, s in parts.items()))
    if with_landmarks:
        lines = ["6", "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
                 "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"]
        for i in range(1, 7):
            lines.append(f"{i:06d}.jpg  14 20 22 20 18 26 15 32 21 {32 + i}")
        (root / "list_landmarks_align_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_layout_splits_and_landmarks(tmp_path):
    root = _celeba(tmp_path)
    with pytest.warns(SkippedFilesWarning, match="skipped 2 of 5 files"):
        train = CelebA(root, "train", size=16)
    assert [r[0].name for r in train.records] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    valid = CelebA(root, "valid", size=16)
    test = CelebA(root, "test", size=16)
    assert len(valid) == 1 and len(test) == 2
    item = test[1]
    assert item["image"].shape == (3, 16, 16)
    # 36x44 -> centre square starts 4 rows down: the right mouth corner (21, 38) of image 6
    expected = normalise_points(torch.tensor([[21.0, 38.0]]), 36, 44)
    assert torch.allclose(item["landmarks"][4], expected[0])
    assert torch.allclose(item["landmarks"][0], torch.tensor([14.5 / 36, 16.5 / 36]))
    assert CelebA(root, "all", size=16, landmarks=False, quiet=True)[0].keys() == {"image"}
    with pytest.raises(ValueError, match="split must be"):
        CelebA(root, "dev")


def test_celeba_ranges_without_partition_file(tmp_path):
    root = _celeba(tmp_path, with_landmarks=False)
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(ValueError, match="needs ranges"):
        CelebA(root, "train")
    with pytest.warns(SkippedFilesWarning):
        ds = CelebA(root, "train", 16, ranges={"train": (2, 7), "test": (1, 1)})
    assert [r[0].name for r in ds.records] == [f"{i:06d}.jpg" for i in range(2, 7)]
    assert len(CelebA(root, "test", 16, ranges={"test": (1, 1)})) == 1


def test_shared_faces_split(faces_dir):
    test = CelebA(faces_dir, "test", size=32, ranges=SHARED_FACES_SPLIT)
    assert len(test) == 1000 and test.records[0][0].name == "008001.jpg"
    assert test[0]["image"].shape == (3, 32, 32)


def test_paired_folder_with_mask(tmp_path):
    root = tmp_path / "pairs"
    for name in ("x1", "x2", "sub/x3"):
        _save(root / "input" / f"{name}.jpg", seed=1)
        _save(root / "target" / f"{name}.png", seed=2)
        m = np.zeros((50, 40), np.uint8)
        m[20:30] = 200
        mask_path = root / "mask" / f"{name}.png"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(m).save(mask_path)
    _save(root / "input" / "lonely.jpg", seed=3)      # no target
    _save(root / "target" / "orphan.jpg", seed=4)     # no input
    with pytest.warns(SkippedFilesWarning, match="skipped 2 of"):
        ds = PairedFolder(root, size=20)
    assert len(ds) == 3
    item = ds[0]
    assert item["input"].shape == (3, 20, 20) and item["target"].shape == (3, 20, 20)
    assert item["mask"].shape == (1, 20, 20) and set(item["mask"].unique().tolist()) == {0, 255}
    cached = PairedFolder(root, size=20, cache="memory", quiet=True)
    for k in ("input", "target", "mask"):
        assert torch.equal(cached.get_batch([0, 2])[k], ds.get_batch([0, 2])[k])
    no_mask = PairedFolder(root, size=20, mask=None, quiet=True)
    assert set(no_mask[0]) == {"input", "target"}


def test_synthetic_faces_dataset():
    ds = SyntheticFaces(10, 32, seed=3)
    cached = SyntheticFaces(10, 32, seed=3, cache="memory")
    assert len(ds) == 10
    b = ds.get_batch([7, 2])
    assert b["image"].shape == (2, 3, 32, 32) and b["image"].dtype == torch.uint8
    assert b["landmarks"].shape == (2, 5, 2)
    assert torch.equal(b["image"], cached.get_batch([7, 2])["image"])
    assert torch.equal(ds[7]["image"], b["image"][0])
    # face i is the same in a larger set
    assert torch.equal(SyntheticFaces(20, 32, seed=3)[7]["image"], b["image"][0])


def test_two_domain(tmp_path):
    root = tmp_path / "real"
    for i in range(3):
        _save(root / f"{i}.png", seed=i)
    real = ImageFolder(root, 32)
    synth = SyntheticFaces(5, 32, seed=0)
    ds = TwoDomain(synth, real, seed=1)
    assert len(ds) == 5
    item = ds[4]
    assert set(item) == {"synthetic", "synthetic_landmarks", "real"}
    assert torch.equal(item["synthetic"], synth[4]["image"])
    b = ds.get_batch([0, 1, 2, 3, 4])
    assert b["real"].shape == (5, 3, 32, 32)
    assert torch.equal(b["real"][4], item["real"])
    # every real image appears, in an order fixed by the seed
    firsts = {tuple(b["real"][i].flatten()[:8].tolist()) for i in range(3)}
    assert len(firsts) == 3
    assert torch.equal(TwoDomain(synth, real, seed=1).get_batch([0, 1, 2])["real"], b["real"][:3])


def test_open_dataset(tmp_path):
    assert isinstance(open_dataset("synthetic", 16, n=4), SyntheticFaces)
    assert isinstance(open_dataset(str(_celeba(tmp_path)), 16, quiet=True), CelebA)
    root = tmp_path / "plain"
    _save(root / "a.png")
    assert isinstance(open_dataset(str(root), 16), ImageFolder)
    with pytest.raises(ValueError, match="neither 'synthetic' nor"):
        open_dataset(str(tmp_path / "nowhere"))
