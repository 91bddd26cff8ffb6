"""Adversarial losses on raw discriminator logits: vanilla (BCE with logits, as pix2pix's
``gan_mode='vanilla'``), least squares (LSGAN) and hinge. Logits are cast to float32 first,
so bf16 autocast changes nothing in the loss arithmetic."""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["GANLoss", "gan_loss"]


class GANLoss:
    """``d(real_logits, fake_logits) -> (loss_real, loss_fake)`` for the discriminator and
    ``g(fake_logits) -> loss`` for the generator; every loss is a mean over all logits."""

    def __init__(self, kind: str):
        if kind not in ("vanilla", "lsgan", "hinge"):
            raise ValueError(f"gan_loss: kind must be vanilla, lsgan or hinge, got {kind!r}")
        self.kind = kind

    def d(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real, fake = real.float(), fake.float()
        if self.kind == "vanilla":
            return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)),
                    F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if self.kind == "lsgan":
            return (real - 1).square().mean(), fake.square().mean()
        return F.relu(1 - real).mean(), F.relu(1 + fake).mean()

    def g(self, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.float()
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.kind == "lsgan":
            return (fake - 1).square().mean()
        return -fake.mean()

    def __repr__(self) -> str:
        return f"GANLoss({self.kind!r})"


def gan_loss(kind: str) -> GANLoss:
    return GANLoss(kind)
