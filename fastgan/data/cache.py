"""Decoded images kept as one uint8 tensor (N, C, S, S): in memory, or in a memory-mapped file
on disk for sets that do not fit.

A cached dataset decodes every image once, when it is built (in threads: Pillow releases the GIL
while it decodes), and afterwards a batch is one gather from this tensor, with no decoding and no
Python per image. The disk cache is a raw array file plus a small JSON sidecar holding a
fingerprint of the source (file names, sizes, modification times, image size); a later run with
the same fingerprint reuses the file without decoding anything. Worker processes open the file
again rather than receive a copy of it.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import torch


def default_threads() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


class ImageCache:
    """``n`` uint8 images of one ``shape`` (C, S, S).

    ``path=None`` keeps them in memory; a path keeps them in a memory-mapped file there
    (``path`` and ``path + ".json"``). ``key`` identifies the source: a disk cache whose sidecar
    holds the same key and says it is done is reused as it is.
    """

    def __init__(self, n: int, shape: tuple[int, int, int], path: str | os.PathLike | None = None,
                 key: str = ""):
        if n < 0:
            raise ValueError(f"ImageCache: n must be >= 0, got {n}")
        self.n, self.shape, self.key = int(n), tuple(int(s) for s in shape), key
        self.path = None if path is None else Path(path)
        self.filled = torch.zeros(self.n, dtype=torch.bool)
        self.reused = False
        if self.path is None:
            self.data = torch.zeros((self.n, *self.shape), dtype=torch.uint8)
        else:
            meta = self._read_meta()
            self.reused = (meta.get("key") == key and meta.get("shape") == [self.n, *self.shape]
                           and meta.get("done") is True)
            if not self.reused:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "wb") as f:  # sparse file of the right size
                    f.truncate(self.nbytes)
                self._meta_path.unlink(missing_ok=True)
            self.data = self._map()
            if self.reused:
                self.filled = torch.tensor(meta.get("filled", [True] * self.n), dtype=torch.bool)

    # -- storage -------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        c, h, w = self.shape
        return self.n * c * h * w

    @property
    def _meta_path(self) -> Path:
        return Path(str(self.path) + ".json")

    def _read_meta(self) -> dict:
        try:
            return json.loads(self._meta_path.read_text())
        except (OSError, ValueError):
            return {}

    def _map(self) -> torch.Tensor:
        if self.n == 0:
            return torch.zeros((0, *self.shape), dtype=torch.uint8)
        flat = torch.from_file(str(self.path), shared=True, size=self.nbytes, dtype=torch.uint8)
        return flat.view(self.n, *self.shape)

    def __getstate__(self):
        state = self.__dict__.copy()
        if self.path is not None:
            state["data"] = None  # workers map the file again instead of receiving a copy
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.path is not None:
            self.data = self._map()

    # -- filling and reading -------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return bool(self.filled.all())

    def fill(self, load: Callable[[int], torch.Tensor | None], indices: Iterable[int] | None = None,
             threads: int | None = None) -> list[tuple[int, BaseException]]:
        """Decode each not-yet-filled index with ``load(i)`` (a uint8 tensor of ``shape``, or
        raise) in ``threads`` threads. Returns the (index, error) pairs of those that failed;
        they stay unfilled. A disk cache records, once every index has been tried, that it is
        done (with which indices hold images), so a later run reuses it."""
        todo = [i for i in (range(self.n) if indices is None else indices) if not self.filled[i]]
        failures: list[tuple[int, BaseException]] = []

        def one(i: int):
            try:
                img = load(i)
            except Exception as e:  # noqa: BLE001 - reported to the caller, never raised here
                return i, e
            if tuple(img.shape) != self.shape or img.dtype != torch.uint8:
                return i, ValueError(f"decoded image has shape {tuple(img.shape)} {img.dtype}, "
                                     f"expected {self.shape} uint8")
            self.data[i].copy_(img)
            return i, None

        threads = default_threads() if threads is None else max(1, threads)
        if threads == 1 or len(todo) < 64:
            results = map(one, todo)
        else:
            pool = ThreadPoolExecutor(threads)
            results = pool.map(one, todo, chunksize=32)
        for i, err in results:
            if err is None:
                self.filled[i] = True
            else:
                failures.append((i, err))
        if threads > 1 and len(todo) >= 64:
            pool.shutdown()
        if self.path is not None and todo and indices is None:
            self._write_meta()
        return failures

    def _write_meta(self) -> None:
        meta = {"key": self.key, "shape": [self.n, *self.shape], "done": True,
                "filled": self.filled.tolist()}
        tmp = Path(str(self._meta_path) + ".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, self._meta_path)

    def get(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """The images at ``indices`` as a new (B, C, S, S) uint8 tensor (one gather)."""
        if not isinstance(indices, torch.Tensor):
            indices = torch.as_tensor(indices, dtype=torch.long)
        return self.data.index_select(0, indices)
