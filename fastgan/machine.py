"""The name of the machine a figure was measured on: the GPU's, else the CPU model with the
thread count torch uses (bench results and quality tables record it)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["device_name"]


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    return platform.processor() or "cpu"
