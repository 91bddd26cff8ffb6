"""LPIPS (Zhang et al. 2018, "The unreasonable effectiveness of deep features as a perceptual
metric") from ONE local file that holds both parts of the metric:

- the backbone (AlexNet or VGG-16 convolutions, ImageNet weights from torchvision), keys
  ``net.sliceK.I.weight/bias`` with I the layer's index in torchvision's ``features``;
- the learned linear layers, keys ``linK.model.1.weight`` (1x1 convolutions, no bias).

The ``lpips`` package's released files (``weights/v0.1/alex.pth``) hold only the linear layers;
its backbone comes from torchvision's downloads, which fastgan does not use. Make the single file
once, where the lpips package is installed: ``torch.save(lpips.LPIPS(net="alex").state_dict(),
"lpips_alex.pth")``, and pass it with ``--lpips-weights``. A file without the backbone is
refused with that instruction.

Computation (version 0.1 of the metric): inputs in [0, 1] scaled to [-1, 1], then shifted and
scaled per channel (``SHIFT``, ``SCALE``); features of the 5 stages unit-normalised over
channels, squared differences weighted by the linear layers, averaged over space, summed over
stages. Lower is more similar; 0 for identical images.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# (torchvision features index, layer) per stage; "M" = 3x3/2 max pool (AlexNet) or 2x2/2 (VGG)
_ALEX = [
    [(0, (3, 64, 11, 4, 2))],
    [(2, "M"), (3, (64, 192, 5, 1, 2))],
    [(5, "M"), (6, (192, 384, 3, 1, 1))],
    [(8, (384, 256, 3, 1, 1))],
    [(10, (256, 256, 3, 1, 1))],
]
_VGG = [
    [(0, (3, 64)), (2, (64, 64))],
    [(4, "M"), (5, (64, 128)), (7, (128, 128))],
    [(9, "M"), (10, (128, 256)), (12, (256, 256)), (14, (256, 256))],
    [(16, "M"), (17, (256, 512)), (19, (512, 512)), (21, (512, 512))],
    [(23, "M"), (24, (512, 512)), (26, (512, 512)), (28, (512, 512))],
]
BACKBONES = {"alex": _ALEX, "vgg": _VGG}


def _stage(layers, alex: bool) -> nn.Sequential:
    seq = nn.Sequential()
    for idx, spec in layers:
        if spec == "M":
            seq.add_module(str(idx), nn.MaxPool2d(3, 2) if alex else nn.MaxPool2d(2, 2))
            continue
        cin, cout, *rest = spec
        k, s, p = rest if rest else (3, 1, 1)
        seq.add_module(str(idx), nn.Conv2d(cin, cout, k, stride=s, padding=p))
        seq.add_module(str(idx + 1), nn.ReLU())
    return seq


class _Backbone(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        for i, layers in enumerate(BACKBONES[kind], 1):
            setattr(self, f"slice{i}", _stage(layers, kind == "alex"))
        self.channels = [next(m for m in reversed(getattr(self, f"slice{i}")) if isinstance(m, nn.Conv2d)).out_channels
                         for i in range(1, 6)]


class _Lin(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))  # key: model.1.weight


class LPIPS(nn.Module):
    """``LPIPS(kind)(x, y) -> (N,)`` distances for images in [0, 1]; kind "alex" or "vgg"."""

    def __init__(self, kind: str = "alex"):
        super().__init__()
        if kind not in BACKBONES:
            raise ValueError(f"LPIPS: kind must be 'alex' or 'vgg', got {kind!r}")
        self.kind = kind
        self.net = _Backbone(kind)
        for i, c in enumerate(self.net.channels):
            setattr(self, f"lin{i}", _Lin(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def _features(self, x):
        h = ((2 * x - 1) - self.shift) / self.scale
        out = []
        for i in range(1, 6):
            h = getattr(self.net, f"slice{i}")(h)
            out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self._features(x.float()), self._features(y.float())
        total = 0
        for i, (a, b) in enumerate(zip(fx, fy)):
            total = total + getattr(self, f"lin{i}").model((a - b) ** 2).mean((2, 3))
        return total.flatten()


def load_lpips(path, device="cpu") -> LPIPS:
    """LPIPS with the backbone and linear weights of one file (see the module docstring)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"LPIPS weights file {p} does not exist; make it where the lpips package "
                                f"is installed: torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{p}: not a loadable state dict of tensors ({type(e).__name__}: {e})") from e
    state = {k.removeprefix("module."): v for k, v in state.items()
             if not k.startswith("scaling_layer.")}  # fixed constants, defined here
    if not any(k.startswith("net.") for k in state):
        raise ValueError(f"{p}: holds only the LPIPS linear layers, not the backbone; make one file with "
                         f"both where the lpips package is installed: "
                         f"torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')")
    w = state.get("net.slice1.0.weight")
    kind = "alex" if w is not None and w.shape[-1] == 11 else "vgg"
    model = LPIPS(kind)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{p}: not an LPIPS AlexNet/VGG-16 state dict ({e})") from e
    return model.eval().requires_grad_(False).to(device)
