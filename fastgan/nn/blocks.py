"""Blocks the models need beyond :class:`ConvNormAct`: a dilated variant (the middle of the
face-completion generator) and a residual block (the SimGAN refiner).

Both reuse ConvNormAct, so ``norm="instance"`` runs the fused InstanceNorm + activation op.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fastgan.nn.norm_act import ConvNormAct

__all__ = ["DilatedConvNormAct", "ResidualBlock"]


class DilatedConvNormAct(ConvNormAct):
    """Stride-1 dilated Conv2d -> norm -> activation with "same" padding.

    Dilation widens the receptive field without downsampling, which is how the Iizuka et al.
    completion network sees the whole face from a 1/4-resolution bottleneck. Options are
    ConvNormAct's (``norm``, ``activation``, ``affine``, ``bias``, ...).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 dilation: int = 1, **kwargs) -> None:
        if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 1:
            raise ValueError(f"DilatedConvNormAct: dilation must be a positive int, got {dilation!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"DilatedConvNormAct: kernel_size must be odd for 'same' padding, "
                             f"got {kernel_size}")
        if kwargs.get("transposed"):
            raise ValueError("DilatedConvNormAct: transposed convolutions are not supported")
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(in_channels, out_channels, kernel_size, 1, padding, dilation=dilation,
                         **kwargs)


class ResidualBlock(nn.Module):
    """``relu(x + norm(conv(act(norm(conv(x))))))``: two 3x3 convolutions with an identity skip.

    The SimGAN refiner is a stack of these at full resolution: the skip makes the identity
    (leave the synthetic image as it is) the easy default, which the self-regularisation loss
    asks for. ``norm``: "instance" (fused), "batch" or "none"; ``affine``/``bias`` as in
    ConvNormAct. ``out_activation="identity"`` drops the final ReLU (pix2pix ResNet style).
    """

    def __init__(self, channels: int, *, norm: str = "none", kernel_size: int = 3,
                 affine: bool = True, bias: bool | None = None, padding_mode: str = "zeros",
                 out_activation: str = "relu") -> None:
        super().__init__()
        if out_activation not in ("relu", "identity"):
            raise ValueError(f"ResidualBlock: out_activation must be 'relu' or 'identity', "
                             f"got {out_activation!r}")
        p = kernel_size // 2
        kw = dict(norm=norm, affine=affine, bias=bias, padding_mode=padding_mode)
        self.conv1 = ConvNormAct(channels, channels, kernel_size, 1, p, activation="relu", **kw)
        self.conv2 = ConvNormAct(channels, channels, kernel_size, 1, p, activation="identity", **kw)
        self.out_activation = out_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.conv2(self.conv1(x))
        return F.relu(y) if self.out_activation == "relu" else y
