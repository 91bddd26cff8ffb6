"""A convolutional VAE for faces (Kingma & Welling 2014), with an optional decoder head that
predicts the face mask, so the reconstruction losses can be restricted to the face region
the model itself finds (the masked-loss face VAE application).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from fastgan._checks import check_tensor, reduction_code
from fastgan.models._common import check_image, check_norm, check_positive_int, cna

__all__ = ["FaceVAE", "VAEOutput", "kl_divergence"]


class VAEOutput(NamedTuple):
    recon: torch.Tensor                 # (N, C, size, size) in [-1, 1]
    mu: torch.Tensor                    # (N, latent_dim)
    logvar: torch.Tensor                # (N, latent_dim)
    mask_logits: torch.Tensor | None    # (N, 1, size, size), or None without the head


class FaceVAE(nn.Module):
    """(N, in_channels, size, size) in [-1, 1] -> :class:`VAEOutput`.

    Encoder: 4x4 stride-2 convs (widths ``channels * min(2**i, 8)``, no norm on the first)
    down to 4x4, then linear layers to ``mu`` and ``logvar``. Decoder: a linear layer back
    to 4x4 and mirrored 4x4 stride-2 transposed convs; the last one gives the image (tanh)
    and, with ``mask_head=True``, a parallel one gives mask logits from the same features.
    ``size`` must be 4 * 2**k (k >= 1). In training, z = mu + sigma * eps with
    ``torch.randn_like`` (reproducible under ``torch.manual_seed``); in eval mode z = mu.
    """

    def __init__(self, in_channels: int = 3, size: int = 64, *, latent_dim: int = 128,
                 channels: int = 32, mask_head: bool = False, norm: str = "batch") -> None:
        super().__init__()
        op = "FaceVAE"
        check_positive_int(op, "in_channels", in_channels)
        check_positive_int(op, "size", size, 8)
        check_positive_int(op, "latent_dim", latent_dim)
        check_positive_int(op, "channels", channels)
        check_norm(op, norm)
        levels = (size // 4).bit_length() - 1
        if size != 4 * 2 ** levels:
            raise ValueError(f"{op}: size must be 4 * 2**k with k >= 1 (8, 16, 32, 64, 128, ...), "
                             f"got {size}")
        self.in_channels, self.size, self.latent_dim = in_channels, size, latent_dim
        width = [channels * min(2 ** i, 8) for i in range(levels)]
        enc, prev = [], in_channels
        for i, cur in enumerate(width):
            enc.append(cna(prev, cur, norm="none" if i == 0 else norm))
            prev = cur
        self.encoder = nn.Sequential(*enc)
        self.top = width[-1]
        flat = self.top * 16
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, flat)
        dec = [cna(width[i], width[i - 1], norm=norm, activation="relu", transposed=True)
               for i in range(levels - 1, 0, -1)]
        self.decoder = nn.Sequential(nn.ReLU(), *dec)
        self.to_image = nn.Sequential(nn.ConvTranspose2d(width[0], in_channels, 4, 2, 1), nn.Tanh())
        self.to_mask = nn.ConvTranspose2d(width[0], 1, 4, 2, 1) if mask_head else None

    def _check(self, x: torch.Tensor) -> None:
        check_image("FaceVAE", "x", x, self.in_channels, self.size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(x)
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"FaceVAE: z must have shape (N, latent_dim={self.latent_dim}), got {got}")
        return self.decoder(self.fc_dec(z).view(z.shape[0], self.top, 4, 4))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self._features(z))

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        h = self._features(z)
        mask_logits = self.to_mask(h) if self.to_mask is not None else None
        return VAEOutput(self.to_image(h), mu, logvar, mask_logits)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) = -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) per
    sample (summed over latent dimensions), then "mean" (over the batch), "sum" or "none" (N,)."""
    op = "kl_divergence"
    check_tensor(op, "mu", mu)
    check_tensor(op, "logvar", logvar)
    if mu.shape != logvar.shape or mu.dim() < 1:
        raise ValueError(f"{op}: mu and logvar must have the same shape (N, ...), got "
                         f"{tuple(mu.shape)} and {tuple(logvar.shape)}")
    reduction_code(op, reduction)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    per = kl.flatten(1).sum(1) if kl.dim() > 1 else kl
    if reduction == "mean":
        return per.mean()
    return per.sum() if reduction == "sum" else per
