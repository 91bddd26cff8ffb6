"""Input validation shared by every public function.

Shape, dtype and device checks are free and always run. Checks that must read the data
(NaN/Inf, mask range) need a host round trip on a GPU, so by default they run only for
CPU tensors outside ``torch.compile``; ``FASTGAN_CHECKS=1`` forces them everywhere (one
sync per call on a GPU) and ``FASTGAN_CHECKS=0`` turns them off.
"""

from __future__ import annotations

import math
import os

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_tensor(op: str, name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")


RANK_LAYOUTS = {4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


def check_images(op: str, x, y, names: tuple[str, str] = ("x", "y"), ranks: tuple[int, ...] = (4,)) -> None:
    """x and y: floating tensors of one shape, dtype and device, N >= 1, of a rank in
    ``ranks`` (4: (N, C, H, W) images; 5: (N, C, D, H, W) volumes or clips)."""
    nx, ny = names
    check_tensor(op, nx, x)
    check_tensor(op, ny, y)
    if x.dim() not in ranks:
        want = " or ".join(f"{r}-D {RANK_LAYOUTS[r]}" for r in ranks)
        raise ValueError(f"{op}: {nx} must be {want}, got shape {_shape(x)}")
    if y.dim() != x.dim():
        raise ValueError(f"{op}: {nx} and {ny} must have the same rank, got {x.dim()}-D {_shape(x)} "
                         f"and {y.dim()}-D {_shape(y)}")
    if x.shape != y.shape:
        raise ValueError(
            f"{op}: {nx} and {ny} must have the same shape, got {_shape(x)} and {_shape(y)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: {nx} must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if y.dtype != x.dtype:
        raise TypeError(f"{op}: {nx} and {ny} must have the same dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"{op}: {nx} and {ny} must be on the same device, got {x.device} and {y.device}")
    if x.shape[0] == 0:
        raise ValueError(f"{op}: {nx} is an empty batch (N = 0); at least one image is needed")
    if x.numel() == 0:
        raise ValueError(f"{op}: {nx} has no elements, shape {_shape(x)}")


def check_mask_shape(op: str, mask, x: torch.Tensor) -> None:
    """mask: a tensor of shape (N, 1, H, W) or (N, C, H, W) for x's (N, C, H, W) (and
    (N, 1 or C, D, H, W) for 5-D x), on x's device."""
    check_tensor(op, "mask", mask)
    n, c, *spatial = x.shape
    if (mask.dim() != x.dim() or mask.shape[0] != n or mask.shape[1] not in (1, c)
            or mask.shape[2:] != x.shape[2:]):
        names = RANK_LAYOUTS.get(x.dim(), "").strip("()").split(", ")
        one, full = ", ".join(["N", "1", *names[2:]]), ", ".join(names)
        raise ValueError(
            f"{op}: mask must have shape ({one}) = {(n, 1, *spatial)} or ({full}) = "
            f"{(n, c, *spatial)}, got {_shape(mask)}")
    if mask.device != x.device:
        raise ValueError(f"{op}: mask must be on {x.device}, got {mask.device}")


def check_mask(op: str, mask, x: torch.Tensor, *, kernel_checks_range: bool = False) -> torch.Tensor | None:
    """Validate a (N, 1, H, W) or (N, C, H, W) mask of weights and cast it to x's dtype.
    ``kernel_checks_range``: the kernel that will run checks the [0, 1] range itself (the
    C++ CPU kernels do, in a pass they make anyway), so no separate pass here."""
    if mask is None:
        return None
    check_mask_shape(op, mask, x)
    if mask.dtype == torch.bool:  # in range by construction
        return mask.to(x.dtype)
    if mask.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: mask must be bool or floating with weights in [0, 1], got {mask.dtype}"
            + (" (for a 0/255 image mask, use mask > 127 or mask / 255)" if mask.dtype == torch.uint8 else ""))
    if not kernel_checks_range:
        _check_mask_range(op, mask)
    return mask if mask.dtype == x.dtype else mask.to(x.dtype)


def call_kernel(op: str, kernel, *args):
    """``kernel(*args)``, its own ValueError (the C++ CPU kernels check the mask range in the
    pass they make anyway, naming their op, e.g. "cosine_loss_forward: ...") renamed after
    the public function ``op``. Traced as a plain call under torch.compile."""
    if torch.compiler.is_compiling():
        return kernel(*args)
    try:
        return kernel(*args)
    except ValueError as e:
        head, sep, rest = str(e).partition(": ")
        if not sep or not head.isidentifier() or head == op:
            raise
        raise ValueError(f"{op}: {rest.splitlines()[0]}") from e


def reduction_code(op: str, reduction) -> int:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return REDUCTIONS[reduction]


def check_positive(op: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{op}: {name} must be a finite number > 0, got {value}")
    return float(value)


def data_checks_enabled(t: torch.Tensor) -> bool:
    if torch.compiler.is_compiling():
        return False
    mode = os.environ.get("FASTGAN_CHECKS", "auto")
    if mode == "0":
        return False
    return mode == "1" or t.device.type == "cpu"


def _check_mask_range(op: str, mask: torch.Tensor) -> None:
    if not data_checks_enabled(mask):
        return
    lo, hi = torch.aminmax(mask)
    if not (lo >= 0 and hi <= 1):
        raise ValueError(f"{op}: mask weights must lie in [0, 1], got values in [{float(lo)}, {float(hi)}]")


def check_finite_result(op: str, result: torch.Tensor, **inputs: torch.Tensor | None) -> None:
    """A loss that is not finite means NaN/Inf somewhere in the inputs (the kernels
    propagate them): find and name the input. Costs nothing on the hot path but one
    look at the (small) result."""
    if not data_checks_enabled(result):
        return
    # One scalar read for the usual scalar loss: isfinite + all ran six small ops, each
    # slow on the caches a large loss kernel has just flushed.
    if math.isfinite(result.item()) if result.numel() == 1 else bool(torch.isfinite(result).all()):
        return
    for name, t in inputs.items():
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{op}: {name} contains NaN or Inf values")
    raise ValueError(f"{op}: the result is not finite ({result.dtype} overflow?) although the inputs are")
