"""fastgan: fused kernels and applications for fast GAN training on faces.

>>> import fastgan as fg
>>> loss = fg.masked_l1(output, target, mask)
"""

__version__ = "0.1.0"

from fastgan._ext import build_info
from fastgan.backends import backend, get_backend, set_backend
from fastgan.functional import (
    cosine_similarity_loss,
    masked_charbonnier,
    masked_l1,
    masked_mse,
    self_regularization_loss,
)

# SSIM family exports (fastgan/ssim.py)
from fastgan.ssim import ms_ssim, psnr, ssim, ssim_l1_loss, ssim_loss, ssim_map  # noqa: E402
# -- end of SSIM exports --
# InstanceNorm family exports (fastgan/nn)
from fastgan.nn import instance_norm_act  # noqa: E402
# -- end of InstanceNorm exports --

__all__ = [
    "__version__", "build_info", "backend", "get_backend", "set_backend",
    "masked_l1", "masked_mse", "masked_charbonnier", "cosine_similarity_loss",
    "self_regularization_loss",
    "instance_norm_act",
    "ssim", "ssim_map", "ssim_loss", "ms_ssim", "ssim_l1_loss", "psnr",
]
