"""Face completion: the encoder-decoder generator with dilated convolutions and the global +
local discriminators of Iizuka et al. 2017 ("Globally and Locally Consistent Image
Completion"), as used for faces by Li et al. 2017 ("Generative Face Completion"), plus the
latter's semantic parsing regulariser and the crop that feeds the local discriminator.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from fastgan._checks import check_mask_shape
from fastgan.models._common import check_image, check_norm, check_positive_int, cna, norm_kw
from fastgan.nn import DilatedConvNormAct

__all__ = ["CompletionGenerator", "GlobalDiscriminator", "LocalDiscriminator",
           "SemanticRegularizer", "crop_around_mask"]


class CompletionGenerator(nn.Module):
    """forward(occluded, mask) -> the full generated image (N, out_channels, H, W) in [-1, 1].

    occluded: (N, in_channels - 1, H, W) in [-1, 1]; mask: (N, 1, H, W), 1 = occluded. The
    occluded pixels are replaced by 0 (the mid-grey of [-1, 1], Iizuka's mean fill) before
    the image and the mask are concatenated, so whatever covered the face (sunglasses, a
    synthetic patch) cannot leak into the output. The recipe composes
    ``out * mask + occluded * (1 - mask)``.

    Iizuka's layout scaled by ``c = channels`` (64 gives the paper's widths): 5x5 conv c,
    3x3 stride-2 to 2c, 3x3, 3x3 stride-2 to 4c, two 3x3, four 3x3 convs dilated 2, 4, 8, 16,
    two 3x3, 4x4 transposed to 2c, 3x3, 4x4 transposed to c, 3x3 to c/2, 3x3 to the output,
    tanh. LeakyReLU(0.2) in the downsampling encoder, ReLU after it. Sides must be divisible
    by 4 and at least 32 (an 8x8 bottleneck).
    """

    MIN_SIZE = 32

    def __init__(self, in_channels: int = 4, out_channels: int = 3, *, channels: int = 64,
                 norm: str = "instance") -> None:
        super().__init__()
        op = "CompletionGenerator"
        check_positive_int(op, "in_channels", in_channels, 2)
        check_positive_int(op, "out_channels", out_channels)
        check_positive_int(op, "channels", channels, 2)
        check_norm(op, norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        c = channels
        enc, dec = "leaky_relu", "relu"
        self.model = nn.Sequential(
            cna(in_channels, c, 5, 1, 2, norm=norm, activation=enc),
            cna(c, 2 * c, 3, 2, 1, norm=norm, activation=enc),
            cna(2 * c, 2 * c, 3, 1, 1, norm=norm, activation=enc),
            cna(2 * c, 4 * c, 3, 2, 1, norm=norm, activation=enc),
            cna(4 * c, 4 * c, 3, 1, 1, norm=norm, activation=dec),
            cna(4 * c, 4 * c, 3, 1, 1, norm=norm, activation=dec),
            *[DilatedConvNormAct(4 * c, 4 * c, 3, dilation=d, activation=dec, **norm_kw(norm))
              for d in (2, 4, 8, 16)],
            cna(4 * c, 4 * c, 3, 1, 1, norm=norm, activation=dec),
            cna(4 * c, 4 * c, 3, 1, 1, norm=norm, activation=dec),
            cna(4 * c, 2 * c, 4, 2, 1, norm=norm, activation=dec, transposed=True),
            cna(2 * c, 2 * c, 3, 1, 1, norm=norm, activation=dec),
            cna(2 * c, c, 4, 2, 1, norm=norm, activation=dec, transposed=True),
            cna(c, c // 2, 3, 1, 1, norm=norm, activation=dec),
            nn.Conv2d(c // 2, out_channels, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, occluded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        op = "CompletionGenerator"
        check_image(op, "occluded", occluded, self.in_channels - 1)
        check_image(op, "mask", mask, 1)
        n, _, h, w = occluded.shape
        if mask.shape != (n, 1, h, w):
            raise ValueError(f"{op}: mask must have shape (N, 1, H, W) = {(n, 1, h, w)}, "
                             f"got {tuple(mask.shape)}")
        if h % 4 or w % 4 or h < self.MIN_SIZE or w < self.MIN_SIZE:
            raise ValueError(f"{op}: H and W must be divisible by 4 and at least {self.MIN_SIZE}, "
                             f"got shape {tuple(occluded.shape)}")
        mask = mask.to(occluded.dtype)
        return self.model(torch.cat([occluded * (1 - mask), mask], 1))


class _ConvClassifier(nn.Module):
    """5x5 stride-2 convs (widths ``channels * min(2**i, 8)``) until the side is at most 4,
    then a linear layer to one logit: Iizuka's discriminators. The paper concatenates the
    two 1024-d features and applies one FC layer, which is the sum of one linear head per
    discriminator; separate logits let the recipe weight and log them separately."""

    def __init__(self, op: str, in_channels: int, size: int, channels: int, norm: str) -> None:
        super().__init__()
        check_positive_int(op, "in_channels", in_channels)
        check_positive_int(op, "size", size, 8)
        check_positive_int(op, "channels", channels)
        check_norm(op, norm)
        self.op, self.in_channels, self.size = op, in_channels, size
        layers, side, prev, i = [], size, in_channels, 0
        while side > 4:
            cur = channels * min(2 ** i, 8)
            layers.append(cna(prev, cur, 5, 2, 2, norm="none" if i == 0 else norm))
            prev, side, i = cur, (side + 1) // 2, i + 1
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(prev * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(self.op, "x", x, self.in_channels, self.size)
        return self.fc(self.features(x).flatten(1))


class GlobalDiscriminator(_ConvClassifier):
    """The whole (N, in_channels, size, size) image -> (N, 1) logits: is the completion
    coherent with the rest of the face?"""

    def __init__(self, in_channels: int = 3, size: int = 128, *, channels: int = 64,
                 norm: str = "instance") -> None:
        super().__init__("GlobalDiscriminator", in_channels, size, channels, norm)


class LocalDiscriminator(_ConvClassifier):
    """A (N, in_channels, size, size) crop around the completed region (see
    :func:`crop_around_mask`) -> (N, 1) logits: is the filled-in detail sharp and real?"""

    def __init__(self, in_channels: int = 3, size: int = 64, *, channels: int = 64,
                 norm: str = "instance") -> None:
        super().__init__("LocalDiscriminator", in_channels, size, channels, norm)


def crop_around_mask(images: torch.Tensor, mask: torch.Tensor, size: int) -> torch.Tensor:
    """The (N, C, size, size) crop of each image centred on its mask's bounding box.

    mask: (N, 1, H, W) or (N, C, H, W), nonzero = occluded. The window is centred on the
    bounding-box centre of the nonzero pixels and then shifted to lie inside the image; a
    sample with an all-zero mask gets the centre crop. Crop real and fake with the same
    mask (and ``crop_around_mask(mask, mask, size)`` for the mask itself). Pure index
    arithmetic and ``gather``: no host sync, so it traces under
    ``torch.compile(fullgraph=True)``, and gradients reach ``images`` exactly (no
    interpolation).
    """
    op = "crop_around_mask"
    check_image(op, "images", images)
    check_mask_shape(op, mask, images)
    n, c, h, w = images.shape
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= min(h, w):
        raise ValueError(f"{op}: size must be an int in [1, min(H, W)] = [1, {min(h, w)}], got {size!r}")
    occ = (mask != 0).any(dim=1)                                  # (N, H, W)

    def start(hit: torch.Tensor, length: int) -> torch.Tensor:   # hit: (N, L) bool
        first = hit.int().argmax(1)                               # first True (0 if none)
        last = (length - 1) - hit.flip(1).int().argmax(1)
        lo = torch.div(first + last + 1 - size, 2, rounding_mode="floor")
        return lo.clamp(0, length - size)

    top = start(occ.any(2), h)
    left = start(occ.any(1), w)
    offs = torch.arange(size, device=images.device)
    rows = (top[:, None] + offs).view(n, 1, size, 1).expand(n, c, size, w)
    out = images.gather(2, rows)
    cols = (left[:, None] + offs).view(n, 1, 1, size).expand(n, c, size, size)
    return out.gather(3, cols)


class SemanticRegularizer(nn.Module):
    """Li et al.'s semantic parsing loss around any frozen face-parsing network.

    parsing_net: (N, 3, H, W) -> (N, K, H, W) logits. It is frozen (``requires_grad`` off,
    kept in eval mode even when the owner calls ``.train()``) so only the generator learns.
    ``forward(output, target)`` returns ``weight * cross_entropy(parsing(output),
    argmax parsing(target))``: the paper compares with ground-truth label maps, which face
    datasets rarely ship, so the parser's own hard labels on the real face stand in for
    them (computed without gradient); the loss pushes the completed face to parse like the
    real one. ``input_transform`` maps [-1, 1] images to whatever the parser expects
    (e.g. ImageNet normalisation). ``init_weights`` leaves the parsing network alone.
    """

    _skip_init = True

    def __init__(self, parsing_net: nn.Module, *, weight: float = 1.0,
                 input_transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        if not isinstance(parsing_net, nn.Module):
            raise TypeError(f"SemanticRegularizer: parsing_net must be an nn.Module, "
                            f"got {type(parsing_net).__name__}")
        self.parsing_net = parsing_net
        self.weight = float(weight)
        self.input_transform = input_transform
        for p in parsing_net.parameters():
            p.requires_grad_(False)
        parsing_net.eval()

    def train(self, mode: bool = True) -> "SemanticRegularizer":
        super().train(mode)
        self.parsing_net.eval()
        return self

    def _parse(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_transform is not None:
            x = self.input_transform(x)
        logits = self.parsing_net(x)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 4 or logits.shape[0] != x.shape[0] \
                or logits.shape[2:] != x.shape[2:]:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"SemanticRegularizer: parsing_net must return (N, K, H, W) logits for "
                             f"input {tuple(x.shape)}, got {got}")
        return logits

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        op = "SemanticRegularizer"
        check_image(op, "output", output)
        check_image(op, "target", target)
        if output.shape != target.shape:
            raise ValueError(f"{op}: output and target must have the same shape, got "
                             f"{tuple(output.shape)} and {tuple(target.shape)}")
        with torch.no_grad():
            labels = self._parse(target).argmax(1)
        return self.weight * F.cross_entropy(self._parse(output), labels)
