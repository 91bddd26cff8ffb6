"""Loading the compiled extension ``fastgan._C`` and reporting what was built.

Importing ``fastgan._C`` registers the C++/CUDA kernels under ``torch.ops.fastgan``.
Without it (a pure-Python install) every op runs its plain-PyTorch reference and a
single warning says so.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import warnings

import torch

_C = None
_IMPORT_ERROR: str | None = None
try:
    if os.environ.get("FASTGAN_NO_EXTENSION") == "1":  # run as a pure-Python install would
        raise ImportError("disabled by FASTGAN_NO_EXTENSION=1")
    _C = importlib.import_module("fastgan._C")
except ImportError as exc:  # pragma: no cover - exercised by the pure-Python install test
    _IMPORT_ERROR = str(exc)
    if os.environ.get("FASTGAN_QUIET") != "1":
        warnings.warn(
            "fastgan: the compiled extension fastgan._C is not available "
            f"({exc}); every op falls back to its plain-PyTorch reference (slow). "
            "Build it with `make build` or `pip install --no-build-isolation -e .`.",
            RuntimeWarning,
            stacklevel=2,
        )

HAS_CPU_KERNELS = _C is not None
HAS_CUDA_KERNELS = bool(_C is not None and _C.with_cuda)


# Found, not imported: importing triton (and the torch.compile machinery its ops need) costs
# ~1 s, which only the Triton backend should pay (fastgan.ops.load_triton_ops).
TRITON_IMPORTABLE = importlib.util.find_spec("triton") is not None


def _triton_status() -> tuple[bool, str]:
    if not TRITON_IMPORTABLE:
        return False, "triton is not installed"
    if torch.cuda.is_available():
        return True, "cuda"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return True, "interpreter (TRITON_INTERPRET=1)"
    return False, "no CUDA device (set TRITON_INTERPRET=1 to run the kernels on the CPU)"


# Decided once at import: the backend choice must not import or probe inside a traced call.
TRITON_STATUS = _triton_status()


def build_info() -> dict:
    """Build facts: version, compiled CPU/CUDA kernels, CUDA archs, Triton availability."""
    from fastgan import __version__

    triton_ok, triton_mode = TRITON_STATUS
    try:
        triton_version = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton_version = None
    return {
        "version": __version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "compiled_extension": _C is not None,
        "extension_error": _IMPORT_ERROR,
        "cpu_kernels": HAS_CPU_KERNELS,
        "cpu_isa": _C.cpu_isa if _C is not None else None,
        "cuda_kernels": HAS_CUDA_KERNELS,
        "cuda_archs": (_C.cuda_archs if _C is not None else "") or None,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "triton": triton_version,
        "triton_usable": triton_ok,
        "triton_mode": triton_mode,
        "cpu_threads": torch.get_num_threads(),
    }
