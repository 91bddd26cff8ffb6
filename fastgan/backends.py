"""Which implementation runs an op: compiled CUDA, Triton, compiled CPU or the reference.

``set_backend("auto")`` (the default, or the ``FASTGAN_BACKEND`` environment variable)
picks per call from the tensors' device: the CUDA C++ kernels on a GPU (Triton when they
were not built), the C++ kernels on the CPU, and the plain-PyTorch reference when nothing
is compiled. The choice is made in Python, so under ``torch.compile`` it is fixed at
trace time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from fastgan import _ext

BACKENDS = ("auto", "cuda", "triton", "cpu", "reference")

_backend = "auto"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    if name.lower() == "triton":   # registered on first choice (outside any traced call)
        from fastgan.ops import load_triton_ops
        load_triton_ops()
    return name.lower()


def set_backend(name: str) -> None:
    """Select the backend for every op: "auto" | "cuda" | "triton" | "cpu" | "reference"."""
    global _backend
    _backend = _check_name(name)


def get_backend() -> str:
    return _backend


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Run a block with another backend: ``with fg.backend("reference"): ...``."""
    global _backend
    previous, _backend = _backend, _check_name(name)
    try:
        yield
    finally:
        _backend = previous


def resolve(device_type: str, *, has_triton: bool) -> str:
    """The concrete backend for tensors on ``device_type``; raises if it cannot run there."""
    name = _backend
    if name == "auto":
        if device_type == "cuda":
            if _ext.HAS_CUDA_KERNELS:
                return "cuda"
            return "triton" if has_triton and _ext.TRITON_STATUS[0] else "reference"
        if device_type == "cpu" and _ext.HAS_CPU_KERNELS:
            return "cpu"
        return "reference"
    if name == "cuda" and (device_type != "cuda" or not _ext.HAS_CUDA_KERNELS):
        why = "the tensors are not on a CUDA device" if device_type != "cuda" else (
            "fastgan was built without CUDA kernels")
        raise RuntimeError(f"backend 'cuda' cannot run: {why}")
    if name == "cpu" and (device_type != "cpu" or not _ext.HAS_CPU_KERNELS):
        why = "the tensors are not on the CPU" if device_type != "cpu" else (
            "the compiled extension fastgan._C is missing")
        raise RuntimeError(f"backend 'cpu' cannot run: {why}")
    if name == "triton":
        ok, why = _ext.TRITON_STATUS
        if not has_triton:
            raise RuntimeError("backend 'triton' has no kernel for this op")
        if not ok or (device_type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1"):
            raise RuntimeError(f"backend 'triton' cannot run on {device_type} tensors: {why}")
    return name


set_backend(os.environ.get("FASTGAN_BACKEND", "auto"))
