"""The Inception-v3 network that FID and KID are defined with, from a local weights file.

The network is TensorFlow's 2015-12-05 Inception-v3 as ported to PyTorch for pytorch-fid
(``pt_inception-2015-12-05-6726825d.pth``, also used by torch-fidelity), written here from the
architecture (torchvision is not needed). It differs from torchvision's ImageNet Inception-v3:

- the 3x3 average pools of the Mixed_5* (A), Mixed_6b-e (C) and Mixed_7b (E) blocks leave the
  zero padding out of the average (TensorFlow's behaviour: ``count_include_pad=False``);
- the pooling branch of the last block, Mixed_7c, is a 3x3 *max* pool;
- the classifier has 1008 outputs (it is kept only so the file loads with ``strict=True``).

Input: (N, 3, H, W) RGB in [0, 1]; it is resized to 299x299 (bilinear, no antialiasing, as
pytorch-fid) and scaled to [-1, 1]. Output: the 2048-d features after the global average pool.

The weights are never downloaded. ``load_inception(path)`` checks the file's SHA-256 against
``INCEPTION_SHA256`` before it unpickles anything (``torch.load(weights_only=True)``), then loads
it with ``strict=True``. The hash: torch-hub file names end in the first 8 hex digits of the
SHA-256 (``6726825d``); the full value is the one that several public projects record for this
exact file (95,628,359 bytes, 566 state-dict entries; this network's state dict has those 566
entries too). It could not be checked against the file itself on the machine this was written on
(the file is not there): if a genuine download is rejected, ``load_inception(path, sha256=None)``
loads it without the check; please report it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                 "pt_inception-2015-12-05-6726825d.pth")
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
INCEPTION_SIZE = 95_628_359
ENV_VAR = "FASTGAN_INCEPTION_WEIGHTS"
FEATURE_DIM = 2048


class ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as TensorFlow), ReLU. Keys: conv, bn."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _pool3(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The 3x3 stride-1 pool of a pooling branch; "avg" averages the in-image pixels only."""
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_pool3(x, "avg")),
        ], 1)


class BlockB(nn.Module):
    """35 -> 17 reduction (Mixed_6a): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class BlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b-e)."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        row = dict(kernel=(1, 7), padding=(0, 3))
        col = dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, **row)
        self.branch7x7_3 = ConvBN(c7, 192, **col)
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_3 = ConvBN(c7, c7, **row)
        self.branch7x7dbl_4 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, **row)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_pool3(x, "avg"))], 1)


class BlockD(nn.Module):
    """17 -> 8 reduction (Mixed_7a)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        t = self.branch7x7x3_1(x)
        t = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(t)))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), t, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (Mixed_7b with an average pool, Mixed_7c with a max pool)."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        s = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(s), self.branch3x3_2b(s),
            self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d),
            self.branch_pool(_pool3(x, self.pool)),
        ], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as FID uses it: ``forward(images in [0, 1]) -> (N, 2048)`` pool features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, "avg")
        self.Mixed_7c = BlockE(2048, "max")
        self.fc = nn.Linear(FEATURE_DIM, 1008)  # unused by FID; part of the weights file

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def default_locations() -> list[Path]:
    """Where the file is looked for when no path is given: $FASTGAN_INCEPTION_WEIGHTS, then
    torch hub's checkpoint folder (where pytorch-fid's own download lands)."""
    out = []
    if os.environ.get(ENV_VAR):
        out.append(Path(os.environ[ENV_VAR]).expanduser())
    out.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILENAME)
    return out


def missing_message(path: Path | None = None) -> str:
    where = f"{path} does not exist. " if path is not None else ""
    return (f"{where}FID and KID need the Inception-v3 FID weights file {INCEPTION_FILENAME} "
            f"({INCEPTION_SIZE:,} bytes), which fastgan never downloads. Get it once from {INCEPTION_URL} "
            f"and give its path with --inception-weights PATH (Python: load_inception(PATH)) or the "
            f"environment variable {ENV_VAR}=PATH, or put it at "
            f"{Path(torch.hub.get_dir()) / 'checkpoints' / INCEPTION_FILENAME}")


def find_inception_weights(path=None) -> Path | None:
    """The weights file: ``path`` when given (FileNotFoundError if it does not exist), else the
    first of ``default_locations()`` that exists, else None."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(missing_message(p))
        return p
    env = os.environ.get(ENV_VAR)
    if env and not Path(env).expanduser().is_file():
        raise FileNotFoundError(missing_message(Path(env).expanduser()) + f" ({ENV_VAR} is set to it)")
    return next((p for p in default_locations() if p.is_file()), None)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_inception(path=None, *, sha256: str | None = INCEPTION_SHA256, device="cpu") -> FIDInceptionV3:
    """The FID network with the weights of ``path`` (default: see ``find_inception_weights``),
    in eval mode on ``device``. ``sha256=None`` skips the hash check (for other copies of the
    same architecture, e.g. in tests)."""
    p = find_inception_weights(path)
    if p is None:
        raise FileNotFoundError(missing_message())
    if sha256 is not None:
        got = sha256_of(p)
        if got != sha256.lower():
            raise ValueError(f"{p}: SHA-256 {got} is not that of {INCEPTION_FILENAME} ({sha256}); "
                             f"the file is damaged or a different one. Get it again from {INCEPTION_URL}")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with objects, or not a torch file at all
        raise ValueError(f"{p}: not a loadable state dict of tensors ({type(e).__name__}: {e})") from e
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise ValueError(f"{p}: does not hold the FID Inception-v3 weights ({e})") from e
    return net.eval().requires_grad_(False).to(device)
