"""What a run shows and leaves behind: ``metrics.jsonl`` (one JSON object per record, with
"step" and every loss by name), a progress line on stderr with img/s and ETA, and optional
TensorBoard events."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

__all__ = ["MetricsLog", "Progress", "format_duration"]


class MetricsLog:
    """Append-only JSON lines; ``truncate_after(step)`` drops records a resumed run will redo."""

    def __init__(self, path: str | os.PathLike, tensorboard_dir: str | os.PathLike | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(tensorboard_dir))
            except Exception as e:  # noqa: BLE001 - tensorboard is optional
                warnings.warn(f"TensorBoard is not available ({e}); writing metrics.jsonl only", stacklevel=2)

    def reset(self) -> None:
        self.path.write_text("")

    def truncate_after(self, step: int) -> None:
        """Keep the records up to ``step`` (the checkpoint a resumed run starts from)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", math.inf) <= step:
                    kept.append(line)
            except ValueError:
                continue  # a line cut by a kill
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(k + "\n" for k in kept))
        os.replace(tmp, self.path)

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")
            f.flush()
        if self._tb is not None:
            step = record["step"]
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A one-line progress bar on stderr, redrawn at each record (a new line each time when
    stderr is not a terminal, so logs stay readable)."""

    def __init__(self, total_steps: int | None, total_seconds: float | None, enabled: bool = True,
                 stream=None):
        self.total_steps, self.total_seconds = total_steps, total_seconds
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._open = False

    def fraction(self, step: int, start_step: int) -> float:
        fracs = []
        if self.total_steps:
            fracs.append(step / self.total_steps)
        if self.total_seconds:
            fracs.append((time.monotonic() - self.start) / self.total_seconds)
        return min(1.0, max(fracs)) if fracs else 0.0

    def eta(self, step: int, start_step: int, steps_per_s: float) -> float:
        etas = []
        if self.total_steps and steps_per_s > 0:
            etas.append((self.total_steps - step) / steps_per_s)
        if self.total_seconds:
            etas.append(self.total_seconds - (time.monotonic() - self.start))
        return max(0.0, min(etas)) if etas else math.nan

    def update(self, step: int, start_step: int, img_per_s: float, steps_per_s: float,
               losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        frac = self.fraction(step, start_step)
        width = 20
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        total = f"/{self.total_steps}" if self.total_steps else ""
        shown = "  ".join(f"{k} {v:.4g}" for k, v in list(losses.items())[:4])
        line = (f"step {step}{total} [{bar}] {frac * 100:3.0f}%  {img_per_s:.1f} img/s  "
                f"ETA {format_duration(self.eta(step, start_step, steps_per_s))}  {shown}")
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self._open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own (closes the bar's line first)."""
        if self._open:
            self.stream.write("\n")
            self._open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
