"""Run quality rows: train each (its own budget, or the one given), score it on the held-out
split, and write ``OUT/NAME/score.json`` per row and ``OUT/metrics.json`` for all of them.
A row whose score.json matches its configuration is not run again, so an interrupted
``fastgan quality`` continues where it stopped."""

from __future__ import annotations

import json
import math
import platform
import shlex
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from fastgan.quality.rows import ROWS, Row
from fastgan.quality.scoring import EVAL_SEED, score

__all__ = ["run_rows", "train_command"]


def _budgeted(row: Row, minutes: float | None, steps: int | None) -> Row:
    if minutes is not None:
        return replace(row, minutes=minutes, steps=None)
    if steps is not None:
        return replace(row, minutes=None, steps=steps)
    return row


def train_options(row: Row, data: str, out: Path) -> dict:
    opts = dict(recipe=row.recipe, data=data, size=row.size, batch=row.batch, seed=0, out=str(out),
                val_images=256, log_every=50, save_every=10**9, val_every=10**9, keep_last=1)
    opts.update(minutes=row.minutes) if row.minutes is not None else opts.update(steps=row.steps)
    opts.update(row.options)
    return opts


def train_command(row: Row, data: str) -> str:
    """The ``fastgan train`` line that trains ``row`` (what a user would type)."""
    words = ["fastgan", "train", row.recipe, "--data", data, "--size", str(row.size), "--batch", str(row.batch)]
    words += ["--minutes", f"{row.minutes:g}"] if row.minutes is not None else ["--steps", str(row.steps)]
    words += ["--seed", "0"]
    for key, value in row.options.items():
        words += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(words)


def _machine() -> dict:
    from fastgan.machine import device_name
    return {"device": device_name(), "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads()}


def run_rows(names: list[str], *, data: str, out: str | Path = "runs/quality", minutes: float | None = None,
             steps: int | None = None, limit: int | None = None, inception_weights: str | None = None,
             log=print) -> dict:
    """Train and score the rows ``names``; returns (and writes to OUT/metrics.json) every scored row
    under OUT, this run's and earlier ones'."""
    from fastgan.train import TrainConfig, train

    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise ValueError(f"quality: unknown row(s) {', '.join(unknown)}; `fastgan quality --list` shows them")
    if not names:
        raise ValueError("quality: no rows to run")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names, 1):
        row = _budgeted(ROWS[name], minutes, steps)
        folder = out / name
        key = {"options": train_options(row, data, folder), "limit": limit, "eval_seed": EVAL_SEED}
        done = _read(folder / "score.json")
        if done is not None and done.get("key") == key:
            log(f"quality [{i}/{len(names)}] {name}: scored before, kept ({folder / 'score.json'})")
            continue
        if folder.exists():   # an interrupted or differently configured row: run it again
            shutil.rmtree(folder)
        log(f"quality [{i}/{len(names)}] {name}: {row.recipe}, {row.lever}, {row.budget()}\n  {train_command(row, data)}")
        cfg = TrainConfig(**key["options"])
        start = time.monotonic()
        result = train(cfg)
        trained_s = time.monotonic() - start
        log(f"quality [{i}/{len(names)}] {name}: scoring {result.checkpoint} on the held-out split")
        figures = score(row.recipe, result.checkpoint, data, occlusion=_occlusion(result.checkpoint),
                        limit=limit, inception_weights=inception_weights)
        record = {"key": key, "row": name, "recipe": row.recipe, "lever": row.lever, "budget": row.budget(),
                  "against": row.against, "command": f"fastgan quality --rows {name}",
                  "train_command": train_command(row, data), "steps": result.step,
                  "train_seconds": round(trained_s, 1), "checkpoint": str(result.checkpoint),
                  "machine": _machine(), "date": time.strftime("%Y-%m-%d"), "metrics": figures}
        _write(folder / "score.json", record)
        log(f"quality [{i}/{len(names)}] {name}: " + _summary(figures))
    rows = {}
    for path in sorted(out.glob("*/score.json")):
        rec = _read(path)
        if rec is not None:
            rows[rec["row"]] = rec
    summary = {"rows": rows, "order": [n for n in ROWS if n in rows]}
    _write(out / "metrics.json", summary)
    log(f"quality: {len(rows)} scored rows -> {out / 'metrics.json'}")
    return summary


def _occlusion(checkpoint) -> str | None:
    from fastgan.train.checkpoint import load_checkpoint
    return load_checkpoint(checkpoint, map_location="cpu")["config"].get("occlusion")


def _summary(figures: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in figures.items()
                     if isinstance(v, float) and math.isfinite(v))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
