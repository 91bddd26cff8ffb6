"""The Python face of every fastgan op: fake tensors, autograd, backend choice.

Each op is a ``torch.library`` custom op so that ``torch.compile(fullgraph=True)``
traces it whole. Public functions live in ``fastgan.functional``. The compiled C++/CUDA
ops live under ``torch.ops.fastgan``, the Triton ones under ``torch.ops.fastgan_triton``.
"""

import torch

from fastgan import _ext
from fastgan.ops.cosine_loss import cosine_loss
from fastgan.ops.instance_norm_act import instance_norm_act
from fastgan.ops.masked_loss import masked_loss
from fastgan.ops.ssim import ssim_map, ssim_sums



def load_triton_ops() -> None:
    """Register the ``torch.ops.fastgan_triton`` ops (idempotent). Done when the Triton backend
    is chosen (``set_backend("triton")``) or is the one "auto" picks, not for every import:
    importing triton and torch.compile's machinery takes ~1 s that a CPU run never needs."""
    if _ext.TRITON_IMPORTABLE:
        from fastgan.ops import triton_losses  # noqa: F401  (registers fastgan_triton ops)
        from fastgan.ops import triton_norm  # noqa: F401
        from fastgan.ops import triton_ssim  # noqa: F401


if torch.cuda.is_available() and not _ext.HAS_CUDA_KERNELS:   # "auto" runs Triton on the GPU
    load_triton_ops()

__all__ = ["masked_loss", "cosine_loss", "instance_norm_act", "ssim_sums", "ssim_map", "load_triton_ops"]
