"""Face datasets: an image folder, the CelebA layout, paired folders, synthetic faces and a
two-domain (synthetic/real) set.

Every dataset returns dicts of uint8 tensors, (C, S, S) per image, centre-cropped to a square
and resized to ``size`` (``size=None`` keeps the square crop's side; the images must then all be
one size to batch). ``get_batch(indices)`` returns the stacked batch; with a cache it is one
gather. Conversion to float happens on the device (``fastgan.data.loader``).

Bad files never stop a run. Files without an image extension, and files whose header Pillow
cannot read (empty, not an image, unsupported), are skipped when the dataset is built; with a
cache every image is decoded then, so truncated or corrupt pixel data is found then too. All of
them are counted in ``dataset.skipped`` ((path, reason) pairs) and reported once, as a single
``SkippedFilesWarning``. Without a cache an image whose pixel data turns out to be corrupt when
it is read is replaced by the next readable one, recorded, and warned about once per process.

Listing is sorted by relative path, so a dataset is the same on every machine; nothing in it is
random except the pairing of ``TwoDomain`` (fixed by its seed).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from fastgan.data.cache import ImageCache
from fastgan.data.io import (ImageReadError, check_header, decode, is_image_name, list_files,
                             normalise_points)


class SkippedFilesWarning(UserWarning):
    """Some files of a dataset were skipped (not images, or unreadable)."""


def describe_skipped(skipped: list[tuple[str, str]], shown: int = 5) -> str:
    """The first ``shown`` (path, reason) pairs and how many more, on one line."""
    text = "; ".join(f"{p} ({why.removeprefix(f'{p}: ')})" for p, why in skipped[:shown])
    return text + (f"; and {len(skipped) - shown} more" if len(skipped) > shown else "")


def _warn_skipped(name: str, skipped: list[tuple[str, str]], total: int) -> None:
    if not skipped:
        return
    warnings.warn(f"{name}: skipped {len(skipped)} of {total} files that are not readable images: "
                  f"{describe_skipped(skipped)}", SkippedFilesWarning, stacklevel=3)


def _source_key(paths: Sequence[Sequence[Path]], extra: str) -> str:
    """A fingerprint of the source files (names, sizes, modification times) for a disk cache."""
    h = hashlib.sha256(extra.encode())
    for group in paths:
        for p in group:
            try:
                st = os.stat(p)
                h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


class FaceDataset(Dataset):
    """Base class. Subclasses set ``records`` (one tuple of file paths per item),
    ``channels`` ([(key, Pillow mode, channel count)], one per path of a record) and may add
    per-item ``extras`` ({key: tensor (len, ...)}); this class does the skipping, caching,
    substitution and batching."""

    name = "dataset"

    def __init__(self, records: list[tuple[Path, ...]], channels: list[tuple[str, str, int]],
                 size: int | None, *, cache=None, threads: int | None = None,
                 skipped: list[tuple[str, str]] | None = None, total: int | None = None,
                 check: bool = True, extras: dict[str, torch.Tensor] | None = None, quiet: bool = False):
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{self.name}: size must be a positive int or None, got {size!r}")
        self.size = size
        self.channels = channels
        self.skipped: list[tuple[str, str]] = list(skipped or [])
        extras = dict(extras or {})
        total = len(records) + len(self.skipped) if total is None else total
        if check and cache is None:  # cheap: headers only (a cache decodes everything anyway)
            keep = []
            for i, rec in enumerate(records):
                why = next((r for r in (check_header(p) for p in rec) if r is not None), None)
                if why is None:
                    keep.append(i)
                else:
                    self.skipped.append((str(rec[0]), why))
            records = [records[i] for i in keep]
            extras = {k: v[keep] for k, v in extras.items()}
        self.records = records
        self.extras = extras
        self.cache: ImageCache | None = None
        self._bad: set[int] = set()
        if cache is not None and records:
            self._build_cache(cache, threads)
        if not quiet:
            _warn_skipped(self.name, self.skipped, total)
        if not self.records:
            raise ValueError(f"{self.name}: no readable images found"
                             + (f" ({len(self.skipped)} files skipped)" if self.skipped else ""))

    # -- decoding ------------------------------------------------------------------------

    @property
    def n_channels(self) -> int:
        return sum(c for _, _, c in self.channels)

    def _decode_record(self, rec: tuple[Path, ...]) -> torch.Tensor:
        parts = []
        for path, (key, mode, _) in zip(rec, self.channels):
            img, _ = decode(path, self.size, mode=mode, resample="nearest" if key == "mask" else "bicubic")
            if key == "mask":  # binary: 255 where the mask is set
                img = (img > 127).to(torch.uint8) * 255
            parts.append(img)
        if len(parts) > 1 and len({tuple(p.shape[1:]) for p in parts}) > 1:
            raise ImageReadError(f"{rec[0]}: the paired images have different sizes "
                                 f"{[tuple(p.shape[1:]) for p in parts]} (give a size)")
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def _build_cache(self, cache, threads) -> None:
        if self.size is None:
            raise ValueError(f"{self.name}: a cache needs a fixed size (size=None keeps each image's own)")
        shape = (self.n_channels, self.size, self.size)
        path = None if cache == "memory" else Path(cache)
        if cache != "memory" and not isinstance(cache, (str, os.PathLike)):
            raise ValueError(f"{self.name}: cache must be None, 'memory' or a file path, got {cache!r}")
        key = _source_key(self.records, f"{type(self).__name__}|{self.channels}|{self.size}")
        self.cache = ImageCache(len(self.records), shape, path=path, key=key)
        failures = self.cache.fill(lambda i: self._decode_record(self.records[i]), threads=threads)
        failed = {i for i, _ in failures}
        failed |= {i for i in range(len(self.records)) if not self.cache.filled[i]}
        if failed:
            reasons = {i: str(e) for i, e in failures}
            for i in sorted(failed):
                self.skipped.append((str(self.records[i][0]), reasons.get(i, "unreadable (cached)")))
        self._rows = torch.tensor([i for i in range(len(self.records)) if i not in failed], dtype=torch.long)
        if failed:
            keep = self._rows
            self.records = [self.records[i] for i in keep.tolist()]
            self.extras = {k: v[keep] for k, v in self.extras.items()}

    def _split(self, data: torch.Tensor) -> dict[str, torch.Tensor]:
        """(…, C, S, S) stacked channels -> {key: (…, c, S, S)}."""
        out, at = {}, 0
        for key, _, c in self.channels:
            out[key] = data[..., at:at + c, :, :]
            at += c
        return out

    # -- access --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.records)

    @property
    def cached(self) -> bool:
        """True when every item is already decoded (a batch is one gather)."""
        return self.cache is not None

    def _load(self, i: int) -> torch.Tensor:
        """The decoded item i, or the next readable one if it cannot be decoded."""
        if self.cache is not None:
            return self.cache.data[self._rows[i]]
        n = len(self.records)
        for step in range(n):
            j = (i + step) % n
            if j in self._bad:
                continue
            try:
                return self._decode_record(self.records[j])
            except ImageReadError as e:
                self._bad.add(j)
                self.skipped.append((str(self.records[j][0]), str(e)))
                warnings.warn(f"{self.name}: skipping unreadable image {e} (using the next one)",
                              SkippedFilesWarning, stacklevel=3)
        raise RuntimeError(f"{self.name}: none of the {n} images could be decoded")

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: index {i} out of range for {len(self)} items")
        i = i % len(self)
        item = self._split(self._load(i))
        for k, v in self.extras.items():
            item[k] = v[i]
        return item

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        """The items at ``indices`` stacked: {key: (B, ...)}; one gather with a cache."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.cache is not None:
            batch = self._split(self.cache.get(self._rows[idx]))
        else:
            batch = self._split(torch.stack([self._load(int(i)) for i in idx]))
        for k, v in self.extras.items():
            batch[k] = v[idx]
        return batch

    def readable_batch(self, indices) -> tuple[dict[str, torch.Tensor], list[int]]:
        """The items at ``indices`` that can be decoded, stacked, and their indices. Unlike
        ``get_batch`` an unreadable image is left out (and added to ``skipped``), not replaced
        by the next one: for outputs written under each item's own name."""
        idx = [int(i) for i in indices]
        if self.cache is not None:
            return self.get_batch(idx), idx
        kept, data = [], []
        for i in idx:
            try:
                data.append(self._decode_record(self.records[i]))
                kept.append(i)
            except ImageReadError as e:
                self._bad.add(i)
                self.skipped.append((str(self.records[i][0]), str(e)))
        if not kept:
            return {}, []
        batch = self._split(torch.stack(data))
        for k, v in self.extras.items():
            batch[k] = v[kept]
        return batch, kept

    def report(self) -> str:
        """A one-line summary: items, size, cache and skipped files."""
        cache = "no cache" if self.cache is None else (
            "memory cache" if self.cache.path is None else f"disk cache {self.cache.path}"
            + (" (reused)" if self.cache.reused else ""))
        return (f"{self.name}: {len(self)} items at {self.size or 'native'} px, {cache}, "
                f"{len(self.skipped)} files skipped")


def _scan(root: Path, recursive: bool, files=None) -> tuple[list[Path], list[tuple[str, str]]]:
    paths = list_files(root, recursive) if files is None else [root / f for f in files]
    good = [p for p in paths if is_image_name(p)]
    skipped = [(str(p), "not an image file name (jpg, jpeg, png, webp)") for p in paths if not is_image_name(p)]
    return good, skipped


class ImageFolder(FaceDataset):
    """Every jpg/jpeg/png/webp file under ``root`` (recursively unless ``recursive=False``),
    sorted by relative path; ``files`` restricts it to those relative paths. Items:
    {"image": uint8 (3, S, S)}. ``cache``: None, "memory" or a file path (memory-mapped)."""

    name = "ImageFolder"

    def __init__(self, root, size: int | None = 128, *, recursive: bool = True, files: Sequence[str] | None = None,
                 cache=None, threads: int | None = None, check: bool = True, quiet: bool = False):
        self.root = Path(root)
        paths, skipped = _scan(self.root, recursive, files)
        self.name = f"ImageFolder({str(self.root)!r})"
        super().__init__([(p,) for p in paths], [("image", "RGB", 3)], size, cache=cache,
                         threads=threads, skipped=skipped, check=check, quiet=quiet)

    @property
    def names(self) -> list[str]:
        """Relative paths of the items, in order."""
        return [r[0].relative_to(self.root).as_posix() for r in self.records]


CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}
# The 9,000-image test set at ../shared/data (no partition file): the project's own split.
SHARED_FACES_SPLIT = {"train": (1, 8000), "test": (8001, 9000)}


class CelebA(FaceDataset):
    """The CelebA layout: ``root/img_align_celeba/*.jpg`` (or the images directly in ``root``),
    ``root/list_eval_partition.txt`` ("000001.jpg 0" lines: 0 train, 1 valid, 2 test) and an
    optional ``root/list_landmarks_align_celeba.txt`` (5 landmarks per image).

    ``split``: "train", "valid", "test" or "all". Without a partition file, ``ranges`` maps
    split names to inclusive (first, last) image numbers (e.g. ``SHARED_FACES_SPLIT``); with
    neither, every image is in "all". Items: {"image": uint8 (3, S, S)} plus
    {"landmarks": float (5, 2)} (normalised x, y of the output square; the mean landmarks of
    aligned faces for an image the file does not list) when the landmark file exists and
    ``landmarks`` is not False."""

    name = "CelebA"

    def __init__(self, root, split: str = "train", size: int | None = 128, *, landmarks: bool | None = None,
                 ranges: dict[str, tuple[int, int]] | None = None, cache=None, threads: int | None = None,
                 quiet: bool = False):
        root = Path(root)
        self.root = root
        img_dir = root / "img_align_celeba" if (root / "img_align_celeba").is_dir() else root
        self.image_dir = img_dir
        if not img_dir.is_dir():
            raise ValueError(f"CelebA: {str(root)!r} is not a directory")
        if split not in (*CELEBA_SPLITS, "all"):
            raise ValueError(f"CelebA: split must be train, valid, test or all, got {split!r}")
        partition = root / "list_eval_partition.txt"
        skipped: list[tuple[str, str]] = []
        if partition.is_file():
            names = []
            for ln, line in enumerate(partition.read_text().splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise ValueError(f"CelebA: {partition}:{ln}: expected 'NAME.jpg 0|1|2', got {line!r}")
                if split == "all" or int(parts[1]) == CELEBA_SPLITS[split]:
                    names.append(parts[0])
        else:
            names = sorted(p.name for p in img_dir.iterdir() if p.is_file() and not p.name.startswith("."))
            if split != "all":
                if not ranges or split not in ranges:
                    raise ValueError(f"CelebA: {partition} is missing, so split {split!r} needs "
                                     f"ranges={{'{split}': (first, last)}} (or split='all')")
                lo, hi = ranges[split]
                chosen = []
                for nm in names:
                    stem = Path(nm).stem
                    if stem.isdigit() and lo <= int(stem) <= hi:
                        chosen.append(nm)
                names = chosen
        paths = []
        for nm in names:
            p = img_dir / nm
            if not is_image_name(p):
                skipped.append((str(p), "not an image file name (jpg, jpeg, png, webp)"))
            elif not p.is_file():
                skipped.append((str(p), "listed in the partition file but missing"))
            else:
                paths.append(p)
        extras = {}
        lm_file = root / "list_landmarks_align_celeba.txt"
        if landmarks is not False and lm_file.is_file():
            extras["landmarks"] = self._read_landmarks(lm_file, paths)
        elif landmarks:
            raise ValueError(f"CelebA: landmarks=True but {lm_file} does not exist")
        self.name = f"CelebA({str(root)!r}, {split!r})"
        super().__init__([(p,) for p in paths], [("image", "RGB", 3)], size, cache=cache, threads=threads,
                         skipped=skipped, extras=extras, quiet=quiet)

    @staticmethod
    def _read_landmarks(path: Path, images: list[Path]) -> torch.Tensor:
        """(len(images), 5, 2) normalised landmarks of each image's output square; the mean
        landmarks of aligned faces for images the file does not list."""
        from fastgan.data.occlusion import MEAN_LANDMARKS

        table = {}
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 11 and is_image_name(parts[0]):
                try:
                    table[parts[0]] = [float(v) for v in parts[1:]]
                except ValueError:
                    continue
        out = MEAN_LANDMARKS.expand(len(images), 5, 2).clone()
        from PIL import Image  # header only, for the image size
        for i, p in enumerate(images):
            if p.name not in table:
                continue
            try:
                with Image.open(p) as im:
                    w, h = im.size
            except (OSError, ValueError):
                continue
            pts = torch.tensor(table[p.name]).view(5, 2)
            out[i] = normalise_points(pts, w, h)
        return out


class PairedFolder(FaceDataset):
    """Paired images: ``root/input/NAME.*`` with ``root/target/NAME.*`` and, when the folder
    exists, ``root/mask/NAME.*`` (binary: > 127 is 1). Items are matched by relative path
    without extension; unmatched files are skipped and counted. ``fastgan occlude`` writes this
    layout (its input folder is named "occluded", which is accepted too).
    Items: {"input": uint8 (3, S, S), "target": uint8 (3, S, S), "mask": uint8 (1, S, S) 0/255}."""

    name = "PairedFolder"

    def __init__(self, root, size: int | None = 128, *, input: str | None = None, target: str = "target",
                 mask: str | None = "mask", cache=None, threads: int | None = None, quiet: bool = False):
        root = Path(root)
        self.root = root
        if input is None:
            input = "input" if (root / "input").is_dir() or not (root / "occluded").is_dir() else "occluded"
        dirs = {"input": root / input, "target": root / target}
        for key, d in dirs.items():
            if not d.is_dir():
                raise ValueError(f"PairedFolder: the {key} folder {str(d)!r} does not exist")
        if mask is not None and (root / mask).is_dir():
            dirs["mask"] = root / mask
        found: dict[str, dict[str, Path]] = {}
        skipped: list[tuple[str, str]] = []
        total = 0
        for key, d in dirs.items():
            paths, bad = _scan(d, True)
            skipped += bad
            total += len(paths) + len(bad)
            found[key] = {}
            for p in paths:
                stem = p.relative_to(d).with_suffix("").as_posix()
                found[key][stem] = p
        stems = sorted(found["input"])
        records, channels = [], [("input", "RGB", 3), ("target", "RGB", 3)]
        if "mask" in dirs:
            channels.append(("mask", "L", 1))
        matched: set[str] = set()
        for stem in stems:
            rec = [found["input"][stem]]
            missing = [k for k in dirs if k != "input" and stem not in found[k]]
            if missing:
                skipped.append((str(found["input"][stem]), f"no matching {' or '.join(missing)} file"))
                continue
            rec += [found[k][stem] for k in dirs if k != "input"]
            records.append(tuple(rec))
            matched.add(stem)
        for key in dirs:
            if key == "input":
                continue
            for stem, p in sorted(found[key].items()):
                if stem not in found["input"]:
                    skipped.append((str(p), "no matching input file"))
        self.name = f"PairedFolder({str(root)!r})"
        super().__init__(records, channels, size, cache=cache, threads=threads, skipped=skipped,
                         total=total, quiet=quiet)


class SyntheticFaces(FaceDataset):
    """``n`` procedural faces (``fastgan.data.synthetic``) at ``size``, face i drawn from row i
    of the seed's parameters (the same for any n). Items: {"image": uint8 (3, S, S),
    "landmarks": float (5, 2)}. ``cache="memory"`` renders them all once."""

    name = "SyntheticFaces"

    def __init__(self, n: int = 1024, size: int = 128, seed: int = 0, *, cache=None, device=None):
        from fastgan.data import synthetic

        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"SyntheticFaces: n must be an int >= 1, got {n!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"SyntheticFaces: size must be an int >= 8, got {size!r}")
        self.size, self.seed, self.device = size, seed, device
        self.channels = [("image", "RGB", 3)]
        self.skipped = []
        self._synthetic = synthetic
        self.params = synthetic.draw_params(n, seed)
        self.records = list(range(n))
        self.extras = {}
        self.cache = None
        self._images = None
        self._landmarks = None
        if cache is not None:
            if cache != "memory":
                raise ValueError(f"SyntheticFaces: cache must be None or 'memory', got {cache!r}")
            imgs, lms = [], []
            for start in range(0, n, 64):
                im, lm = self._render(torch.arange(start, min(n, start + 64)))
                imgs.append(im)
                lms.append(lm)
            self._images = torch.cat(imgs)
            self._landmarks = torch.cat(lms)

    def _render(self, idx: torch.Tensor):
        img, lm = self._synthetic.render(self.params[idx], self.size, device=self.device)
        return img.mul(255).round_().to(torch.uint8).cpu(), lm.cpu()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def cached(self) -> bool:
        return self._images is not None

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"SyntheticFaces: index {i} out of range for {len(self)} items")
        b = self.get_batch([i % len(self)])
        return {k: v[0] for k, v in b.items()}

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self._images is not None:
            return {"image": self._images[idx], "landmarks": self._landmarks[idx]}
        img, lm = self._render(idx)
        return {"image": img, "landmarks": lm}

    def readable_batch(self, indices) -> tuple[dict[str, torch.Tensor], list[int]]:
        idx = [int(i) for i in indices]   # rendered, never unreadable
        return self.get_batch(idx), idx

    def report(self) -> str:
        return (f"SyntheticFaces: {len(self)} faces at {self.size} px, seed {self.seed}, "
                f"{'memory cache' if self._images is not None else 'rendered on demand'}")


class TwoDomain(Dataset):
    """Unpaired images from two domains (SimGAN: synthetic and real): item i holds
    ``synthetic[i % len(synthetic)]`` and ``real[perm[i % len(real)]]`` with ``perm`` a
    permutation fixed by ``seed``; the length is the larger of the two. Keys: "synthetic" and
    "real" (each domain's "image"), and "synthetic_KEY"/"real_KEY" for its other keys."""

    def __init__(self, synthetic: Dataset, real: Dataset, seed: int = 0):
        for name, ds in (("synthetic", synthetic), ("real", real)):
            if len(ds) == 0:
                raise ValueError(f"TwoDomain: the {name} dataset is empty")
        self.synthetic, self.real = synthetic, real
        self.perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return max(len(self.synthetic), len(self.real))

    def _indices(self, idx: torch.Tensor):
        return idx % len(self.synthetic), self.perm[idx % len(self.real)]

    @staticmethod
    def _rename(domain: str, item: dict) -> dict:
        return {(domain if k == "image" else f"{domain}_{k}"): v for k, v in item.items()}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"TwoDomain: index {i} out of range for {len(self)} items")
        s, r = self._indices(torch.tensor(i % len(self)))
        return {**self._rename("synthetic", self.synthetic[int(s)]), **self._rename("real", self.real[int(r)])}

    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        s, r = self._indices(torch.as_tensor(indices, dtype=torch.long))
        return {**self._rename("synthetic", get_batch(self.synthetic, s)),
                **self._rename("real", get_batch(self.real, r))}


def readable_batch(dataset: Dataset, indices) -> tuple[dict[str, torch.Tensor], list[int]]:
    """``dataset.readable_batch(indices)`` for a file dataset; any other has no unreadable items."""
    if hasattr(dataset, "readable_batch"):
        return dataset.readable_batch(indices)
    idx = [int(i) for i in indices]
    return get_batch(dataset, idx), idx


def get_batch(dataset: Dataset, indices) -> dict[str, torch.Tensor]:
    """``dataset.get_batch(indices)`` when it has one, else its items stacked."""
    if hasattr(dataset, "get_batch"):
        return dataset.get_batch(indices)
    items = [dataset[int(i)] for i in torch.as_tensor(indices).tolist()]
    return torch.utils.data.default_collate(items)


def is_paired_folder(root: str | os.PathLike) -> bool:
    """The paired layout: target/ beside input/ or occluded/ (what ``fastgan occlude`` writes)."""
    root = Path(root)
    return (root / "target").is_dir() and ((root / "input").is_dir() or (root / "occluded").is_dir())


def data_layout(spec: str) -> str:
    """What a data name or path holds: "synthetic", "celeba" (img_align_celeba/ or
    list_eval_partition.txt), "paired" (``is_paired_folder``) or "folder" (any image folder)."""
    if spec == "synthetic":
        return "synthetic"
    root = Path(spec)
    if not root.is_dir():
        raise ValueError(f"data {spec!r} is neither 'synthetic' nor an existing folder")
    if (root / "img_align_celeba").is_dir() or (root / "list_eval_partition.txt").is_file():
        return "celeba"
    return "paired" if is_paired_folder(root) else "folder"


def open_dataset(spec: str, size: int = 128, *, split: str = "train", cache=None, seed: int = 0,
                 n: int = 1024, quiet: bool = False) -> Dataset:
    """A dataset from a name or a path (see ``data_layout``): ``n`` procedural faces, a CelebA
    split, paired folders, otherwise an image folder."""
    layout = data_layout(spec)
    if layout == "synthetic":
        return SyntheticFaces(n, size, seed, cache=cache)
    if layout == "celeba":
        return CelebA(spec, split, size, cache=cache, quiet=quiet)
    if layout == "paired":
        return PairedFolder(spec, size, cache=cache, quiet=quiet)
    return ImageFolder(spec, size, cache=cache, quiet=quiet)
