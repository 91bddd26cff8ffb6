"""SimGAN (Shrivastava et al. 2017, "Learning from Simulated and Unsupervised Images through
Adversarial Training"): a refiner that makes synthetic faces look real while staying close
to its input, and a local discriminator that classifies every patch separately, so the
refiner cannot over-emphasise one feature to fool a single global decision.
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.models._common import check_image, check_norm, check_positive_int, cna, norm_kw
from fastgan.nn import ResidualBlock

__all__ = ["SimGANRefiner", "SimGANDiscriminator"]


class SimGANRefiner(nn.Module):
    """(N, in_channels, H, W) in [-1, 1] -> refined (N, out_channels, H, W) in [-1, 1], any H, W.

    As in the paper: a 3x3 conv to ``channels`` maps + ReLU, ``n_blocks`` ResNet blocks
    (two 3x3 convs each) at full resolution, then a 1x1 conv to the output and tanh. No
    pooling or striding, so each output pixel only sees a local neighbourhood of its input
    pixel, which keeps annotations of the synthetic image valid after refinement.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, *, channels: int = 64,
                 n_blocks: int = 4, norm: str = "none") -> None:
        super().__init__()
        op = "SimGANRefiner"
        check_positive_int(op, "in_channels", in_channels)
        check_positive_int(op, "out_channels", out_channels)
        check_positive_int(op, "channels", channels)
        check_positive_int(op, "n_blocks", n_blocks, 0)
        check_norm(op, norm)
        self.in_channels = in_channels
        self.stem = cna(in_channels, channels, 3, 1, 1, norm=norm, activation="relu")
        self.blocks = nn.Sequential(*[
            ResidualBlock(channels, **norm_kw(norm))
            for _ in range(n_blocks)])
        self.head = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("SimGANRefiner", "x", x, self.in_channels)
        return torch.tanh(self.head(self.blocks(self.stem(x))))


class SimGANDiscriminator(nn.Module):
    """(N, in_channels, H, W) -> (N, 1, ceil(H/4), ceil(W/4)) per-patch real/fake logits.

    The paper's network scaled by ``channels`` (64 gives its 96, 64, 32, 32 maps): 3x3
    stride-2 convs to ``3*channels/2`` and ``channels``, a 3x3 stride-1 max pool, a 3x3 conv
    to ``channels/2``, a 1x1 conv to ``channels/2`` and a 1x1 conv to one logit per location
    (the paper's two-way softmax is the same as one logit with a sigmoid). LeakyReLU(0.2).
    The local adversarial loss is the mean of the per-location losses.
    """

    def __init__(self, in_channels: int = 3, *, channels: int = 64, norm: str = "none") -> None:
        super().__init__()
        op = "SimGANDiscriminator"
        check_positive_int(op, "in_channels", in_channels)
        check_positive_int(op, "channels", channels, 2)
        check_norm(op, norm)
        self.in_channels = in_channels
        c1, c2, c3 = channels * 3 // 2, channels, channels // 2
        self.model = nn.Sequential(
            cna(in_channels, c1, 3, 2, 1, norm="none"),
            cna(c1, c2, 3, 2, 1, norm=norm),
            nn.MaxPool2d(3, 1, 1),
            cna(c2, c3, 3, 1, 1, norm=norm),
            cna(c3, c3, 1, 1, 0, norm=norm),
            nn.Conv2d(c3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("SimGANDiscriminator", "x", x, self.in_channels)
        return self.model(x)
