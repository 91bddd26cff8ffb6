"""The pix2pix U-Net generator (Isola et al. 2017, "Image-to-Image Translation with
Conditional Adversarial Networks"), built on the fused Conv -> InstanceNorm -> act blocks.

Level i (0 = outermost) halves the side with a 4x4 stride-2 convolution to
``ngf * min(2**i, 8)`` channels and its up path doubles it back; the up path of level i sees
its own down features concatenated with the level below's output (skip connections). As in
the reference: the outermost down convolution has no norm, the innermost (1x1 at the nominal
size) has no norm either, since instance norm of a single pixel is undefined; the up path
is ReLU -> ConvTranspose -> norm and the outermost ends in tanh; with ``dropout=True`` the
``ngf*8`` levels between the innermost and the four outer levels apply Dropout(0.5) (three
levels for unet_256).

Activations are folded into the fused norm: the reference's LeakyReLU is in place, so its
skip carries leaky_relu(h), and the ReLU of the next up path gives relu(leaky_relu(h)) =
relu(h); the same values come out of ``leaky(norm(conv))`` downs with ``relu`` applied to
the skip, and ``relu(norm(convT))`` ups (dropout commutes with ReLU). So the outputs match
the reference for equal weights while every norm + activation is one fused op.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fastgan.models._common import check_image, check_norm, check_positive_int, cna

__all__ = ["UNetGenerator", "unet_64", "unet_128", "unet_256"]


class UNetGenerator(nn.Module):
    """U-Net: (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1].

    H and W must be divisible by ``2 ** num_downs``. ``norm``: "instance" (default, fused),
    "batch" or "none"; ``dropout``: pix2pix's noise source (Dropout(0.5) in the inner levels).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8, *,
                 ngf: int = 64, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        op = "UNetGenerator"
        check_positive_int(op, "in_channels", in_channels)
        check_positive_int(op, "out_channels", out_channels)
        check_positive_int(op, "num_downs", num_downs, 2)
        check_positive_int(op, "ngf", ngf)
        check_norm(op, norm)
        self.in_channels, self.out_channels, self.num_downs = in_channels, out_channels, num_downs
        self.norm, self.dropout = norm, bool(dropout)
        width = [ngf * min(2 ** i, 8) for i in range(num_downs)]   # inner channels of level i
        downs, ups = [], []
        for i in range(num_downs):
            cin = in_channels if i == 0 else width[i - 1]
            if i == 0:     # conv only; the LeakyReLU is the next level's input activation
                downs.append(cna(cin, width[0], norm="none", activation="leaky_relu",
                                 bias=norm != "batch"))
            elif i == num_downs - 1:   # innermost: no norm; the ReLU is its up path's
                downs.append(cna(cin, width[i], norm="none", activation="relu", bias=norm != "batch"))
            else:
                downs.append(cna(cin, width[i], norm=norm, activation="leaky_relu"))
        for i in range(num_downs):
            up_in = width[i] if i == num_downs - 1 else 2 * width[i]
            if i == 0:
                ups.append(nn.Sequential(
                    nn.ConvTranspose2d(up_in, out_channels, 4, 2, 1, bias=True), nn.Tanh()))
                continue
            block = cna(up_in, width[i - 1], norm=norm, activation="relu", transposed=True)
            if self.dropout and 4 <= i <= num_downs - 2:
                block = nn.Sequential(block, nn.Dropout(0.5))
            ups.append(block)
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = "UNetGenerator"
        check_image(op, "x", x, self.in_channels)
        m = 2 ** self.num_downs
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"{op}: H and W must be divisible by 2**num_downs = {m} "
                             f"(num_downs={self.num_downs}), got shape {tuple(x.shape)}")
        skips = []
        h = x
        for down in self.downs[:-1]:
            h = down(h)
            skips.append(h)
        h = self.ups[-1](self.downs[-1](h))
        for i in range(self.num_downs - 2, -1, -1):
            h = self.ups[i](torch.cat([F.relu(skips[i]), h], 1))
        return h


def unet_64(in_channels: int = 3, out_channels: int = 3, **kw) -> UNetGenerator:
    """6 levels: a 64x64 input reaches 1x1 at the bottleneck."""
    return UNetGenerator(in_channels, out_channels, 6, **kw)


def unet_128(in_channels: int = 3, out_channels: int = 3, **kw) -> UNetGenerator:
    """7 levels (pix2pix's unet_128)."""
    return UNetGenerator(in_channels, out_channels, 7, **kw)


def unet_256(in_channels: int = 3, out_channels: int = 3, **kw) -> UNetGenerator:
    """8 levels (pix2pix's unet_256, 54.4 M parameters at ngf=64)."""
    return UNetGenerator(in_channels, out_channels, 8, **kw)
