"""Drop-in replacements for other libraries' APIs, backed by fastgan's kernels.

``from fastgan.compat import pytorch_msssim`` (or ``from fastgan.compat.pytorch_msssim
import ssim, ms_ssim, SSIM, MS_SSIM``) in place of ``import pytorch_msssim``.
"""

from fastgan.compat import pytorch_msssim

__all__ = ["pytorch_msssim"]
