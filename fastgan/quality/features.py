"""A small fixed feature extractor for KID where no pretrained network is at hand: a
seeded random convolutional network (three stride-2 convolutions with ReLU, then the mean
and standard deviation of each channel: 256 features). Random-feature KID ranks image sets
by how their local colour and texture statistics differ, needs no download, and is the
same on every machine; it is not comparable with Inception KID figures."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RandomFeatures"]


class RandomFeatures(nn.Module):
    """[0, 1] images (N, 3, H, W) -> (N, 256) features; the weights depend on ``seed`` only."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        widths = [3, 32, 64, 128]
        self.convs = nn.ModuleList()
        for cin, cout in zip(widths, widths[1:]):
            conv = nn.Conv2d(cin, cout, 4, 2, 1)
            with torch.no_grad():
                conv.weight.normal_(0, (2 / (cin * 16)) ** 0.5, generator=g)   # He init: ReLU keeps scale
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False).eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h = images.float() * 2 - 1
        for conv in self.convs:
            h = torch.relu(conv(h))
        return torch.cat([h.mean((2, 3)), h.std((2, 3))], 1)
