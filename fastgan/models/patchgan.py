"""The PatchGAN discriminator of pix2pix (Isola et al. 2017): a fully convolutional net whose
every output logit judges one receptive-field patch of the input (70x70 for n_layers=3), so
the adversarial loss models high-frequency structure while L1 handles low frequencies.
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.models._common import check_image, check_norm, check_positive_int, cna

__all__ = ["PatchGANDiscriminator"]


class PatchGANDiscriminator(nn.Module):
    """(N, in_channels, H, W) -> (N, 1, h, w) raw logits (no sigmoid: use BCE-with-logits or LSGAN).

    Layers: 4x4 stride-2 conv + LeakyReLU(0.2) (no norm), ``n_layers - 1`` more stride-2
    conv/norm/LeakyReLU with ``ndf * min(2**n, 8)`` channels, one stride-1 such block and a
    stride-1 conv to one channel. A 256 input gives 30x30. Conditional (pix2pix) use: the
    caller concatenates (condition, image) on channels, hence the default ``in_channels=6``.
    """

    def __init__(self, in_channels: int = 6, *, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        op = "PatchGANDiscriminator"
        check_positive_int(op, "in_channels", in_channels)
        check_positive_int(op, "ndf", ndf)
        check_positive_int(op, "n_layers", n_layers)
        check_norm(op, norm)
        self.in_channels, self.n_layers, self.norm = in_channels, n_layers, norm
        layers = [cna(in_channels, ndf, norm="none")]
        prev = ndf
        for n in range(1, n_layers):
            cur = ndf * min(2 ** n, 8)
            layers.append(cna(prev, cur, norm=norm))
            prev = cur
        cur = ndf * min(2 ** n_layers, 8)
        layers.append(cna(prev, cur, 4, 1, 1, norm=norm))
        layers.append(nn.Conv2d(cur, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        """Side of the input patch one output logit sees, from the layer specs
        (kernel 4 everywhere; strides 2 then 1, 1): 70 for n_layers=3."""
        rf, jump = 1, 1
        for stride in [2] * self.n_layers + [1, 1]:
            rf += (4 - 1) * jump
            jump *= stride
        return rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("PatchGANDiscriminator", "x", x, self.in_channels)
        return self.model(x)
