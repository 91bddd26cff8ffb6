"""Convolutions with tiny spatial extent as plain matrix products, on the CPU.

Profiling the pix2pix step on the CPU (bench/test_bench_train.py) shows the U-Net's innermost
layers (512-1024 channels at 1x1 to 4x4 pixels, batch 16) running oneDNN's convolution at
15-40 GFLOP/s, against 150-200 for the outer layers: at these shapes its blocking does not
fit. The same function written as unfold + one GEMM (a convolution) or one GEMM + fold (a
transposed convolution) is 1.3x to 2.7x faster forward + backward there (autograd derives the
backward: two more GEMMs and a fold/unfold), and slower for larger maps, so the choice is
made per call from the input's shape. Same parameters and state_dict, same function (up to
float summation order).

``use_gemm_for_small_convs(module)`` switches every plain Conv2d / ConvTranspose2d inside
``module`` (in place) to these classes; on other devices, or above the size limit, they run
the usual convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["use_gemm_for_small_convs", "GemmConv2d", "GemmConvTranspose2d"]

MAX_PIXELS = 4   # measured: GEMM wins up to 2x2 maps (conv: output, transposed: input)


class GemmConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or self.groups != 1 or self.padding_mode != "zeros" \
                or isinstance(self.padding, str):
            return super().forward(x)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh * ow > MAX_PIXELS:
            return super().forward(x)
        cols = F.unfold(x, self.kernel_size, dilation=self.dilation, padding=self.padding, stride=self.stride)
        out = cols.transpose(1, 2) @ self.weight.reshape(self.out_channels, -1).t()   # (N, L, Cout)
        if self.bias is not None:
            out = out + self.bias
        return out.transpose(1, 2).reshape(n, self.out_channels, oh, ow)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or self.groups != 1 or output_size is not None \
                or self.dilation != (1, 1) or self.output_padding != (0, 0) or self.padding_mode != "zeros":
            return super().forward(x, output_size)
        n, cin, h, w = x.shape
        if h * w > MAX_PIXELS:
            return super().forward(x)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        cols = x.reshape(n, cin, h * w).transpose(1, 2) @ self.weight.reshape(cin, -1)   # (N, L, Cout*kh*kw)
        out = F.fold(cols.transpose(1, 2), (oh, ow), self.kernel_size, padding=self.padding, stride=self.stride)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


def use_gemm_for_small_convs(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = GemmConv2d
        elif type(m) is nn.ConvTranspose2d:
            m.__class__ = GemmConvTranspose2d
    return module
