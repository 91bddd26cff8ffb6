"""Checkpoints that survive a kill at any moment and load without unpickling code.

A checkpoint is a dict of tensors and plain values (models, optimisers, schedulers, step,
RNG states as uint8 tensors, the history buffer, the config as a dict) written with
``torch.save`` to a temporary file in the same folder, flushed and fsynced, then renamed over
the final name (``os.replace`` is atomic on POSIX) and the folder fsynced, so the name always
points at a complete file: a kill -9 mid-write leaves only a stray temporary file, which the
next run removes. Loading uses ``torch.load(weights_only=True)``.

Files: ``step-00001000.pt`` (the last ``keep_last`` kept) and ``best.pt`` (a hard link to the
step file with the best validation metric, so it survives pruning without a second write).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch

__all__ = ["atomic_save", "load_checkpoint", "load_weights", "CheckpointError", "CheckpointManager", "rng_state", "set_rng_state", "step_of"]

_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")
FORMAT = "fastgan-train/1"


def step_of(path: str | os.PathLike) -> int | None:
    """The step of a ``step-N.pt`` file name (None for any other name, e.g. best.pt)."""
    m = _STEP_FILE.match(Path(path).name)
    return int(m.group(1)) if m else None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` so that ``path`` is either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:
                # torch's zip writer reports a failed write (a full disk) as its own RuntimeError
                # raised while handling the OSError: surface the OSError, which says what happened
                if isinstance(e.__context__, OSError):
                    raise e.__context__ from e
                raise
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


class CheckpointError(ValueError):
    """A file that is not a loadable fastgan training checkpoint; the message names it."""


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """A checkpoint written by the trainer, loaded with ``weights_only=True`` (no pickled code
    runs); CheckpointError naming the file for one that is truncated, not a checkpoint, or
    not a fastgan one."""
    path = Path(path)
    if path.is_dir():
        found = CheckpointManager(path, create=False).latest()
        if found is None:
            raise FileNotFoundError(f"no checkpoint in {path}")
        path = found
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, refused class, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path} is not a loadable checkpoint ({type(e).__name__}: {first[:300]})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fastgan training checkpoint (format {FORMAT})")
    state["path"] = str(path)   # for error messages of what is loaded from it
    return state


def ema_name(generator: str) -> str:
    """The checkpoint's name for the weight EMA of ``generator`` (``--ema``), which inference
    loads in its place."""
    return f"{generator}_ema"


def inference_weights_name(state: dict, generator: str) -> str:
    """The weights inference should load: the EMA where the checkpoint has one."""
    models = state.get("models") if isinstance(state.get("models"), dict) else {}
    return ema_name(generator) if ema_name(generator) in models else generator


def load_weights(module: torch.nn.Module, state: dict, name: str, path=None) -> None:
    """``module.load_state_dict(state["models"][name])``; CheckpointError naming the file when
    the checkpoint holds no such model or one of another shape (another recipe's)."""
    where = path or state.get("path", "the checkpoint")
    models = state.get("models") if isinstance(state.get("models"), dict) else {}
    weights = models.get(name)
    if weights is None:
        raise CheckpointError(f"{where} holds no {name!r} model (it has: {', '.join(models) or 'none'})")
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{where}: its {name!r} weights do not fit the {name!r} model of this run "
                              f"model ({str(e).splitlines()[0]})") from e


def rng_state(device: torch.device, generator: torch.Generator | None = None) -> dict:
    """Every RNG the run draws from, as uint8 tensors (weights_only-safe)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if generator is not None:
        state["trainer"] = generator.get_state()
    return state


def set_rng_state(state: dict, device: torch.device, generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    if generator is not None and "trainer" in state:
        generator.set_state(state["trainer"].cpu())


class CheckpointManager:
    """Step checkpoints in ``directory``: save (atomic, keep the last N), best, latest."""

    def __init__(self, directory: str | os.PathLike, keep_last: int = 3, create: bool = True):
        self.dir = Path(directory)
        self.keep_last = keep_last
        if create:
            self.dir.mkdir(parents=True, exist_ok=True)
            for stale in self.dir.glob(".*.tmp-*"):  # left by a kill during a write
                stale.unlink(missing_ok=True)

    def path_for(self, step: int) -> Path:
        return self.dir / f"step-{step:08d}.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def steps(self) -> list[tuple[int, Path]]:
        if not self.dir.is_dir():
            return []
        found = [(step, p) for p in self.dir.iterdir() if (step := step_of(p)) is not None]
        return sorted(found)

    def latest(self) -> Path | None:
        """The newest step checkpoint that loads (an unreadable one is reported and skipped)."""
        for step, path in reversed(self.steps()):
            try:
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                return path
            except Exception as e:  # noqa: BLE001 - any failure means: not this one
                warnings.warn(f"checkpoint {path} does not load ({type(e).__name__}: {e}); "
                              "trying an older one", stacklevel=2)
        return None

    def save(self, state: dict, step: int) -> Path:
        path = atomic_save({"format": FORMAT, **state}, self.path_for(step))
        self.prune(keep=path)
        return path

    def prune(self, keep: Path | None = None) -> None:
        files = self.steps()
        for _, path in files[:max(0, len(files) - self.keep_last)]:
            if path != keep:
                path.unlink(missing_ok=True)

    def mark_best(self, path: Path) -> Path:
        """Make ``best.pt`` the same file as ``path`` (hard link, atomically replaced)."""
        tmp = self.dir / f".best.pt.tmp-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)
        except OSError:  # a file system without hard links: copy
            import shutil
            shutil.copyfile(path, tmp)
        os.replace(tmp, self.best_path)
        _fsync_dir(self.dir)
        return self.best_path
