"""What every recipe has: the models it builds, the optimiser groups, and four functions the
trainer composes into a step (and compiles):

    gen = generate(batch)                  # the generator's forward: {"output": ..., ...}
    fake = fake_for_d(batch, gen)          # eager: what the discriminators see as fake
    d = d_loss(batch, fake)                # {"loss_d": total, parts...}  (if any discriminator)
    g = g_loss(batch, gen)                 # {"loss_g": total, parts...}
    after_step(batch, gen)                 # eager: e.g. the history buffer update

Images inside a recipe are in [-1, 1] (the generators' tanh range); ``prepare`` converts the
loader's [0, 1] batch. ``self.train_models`` are the models to train through (DDP-wrapped
under torchrun); ``self.nets`` the bare modules (used where no gradient sync is wanted, e.g.
the discriminator inside the generator step, whose parameters are frozen there).
"""

from __future__ import annotations

import torch
from torch import nn

import fastgan as fg
from fastgan.train.config import TrainConfig
from fastgan.train.gan_losses import gan_loss

__all__ = ["Recipe", "recon_loss", "to_signed", "to_unit"]


def to_signed(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) * 0.5).clamp(0, 1)


def recon_loss(name: str):
    """``fn(output, target, mask) -> loss`` on [-1, 1] images; "masked-*" forms restrict the
    loss to the mask (1 = occluded), the others ignore it."""
    masked = name.startswith("masked-")
    base = name[len("masked-"):] if masked else name

    def fn(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        m = mask if masked else None
        x, y = x.float(), y.float()
        if base == "l1":
            return fg.masked_l1(x, y, m)
        if base == "l2":
            return fg.masked_mse(x, y, m)
        if base == "cosine-sum":
            return fg.cosine_similarity_loss(x, y, m, reduction="sum")
        if base == "cosine-mean":
            return fg.cosine_similarity_loss(x, y, m, reduction="mean")
        if base == "ssim":
            return fg.ssim_loss(x, y, data_range=2.0, mask=m)
        if base == "ssim+l1":
            return fg.ssim_l1_loss(x, y, data_range=2.0, mask=m)
        raise ValueError(f"unknown reconstruction loss {name!r}")

    return fn


class Recipe:
    name = "recipe"
    generator = "G"                    # the model inference runs
    discriminators: tuple[str, ...] = ("D",)
    uses_mask = False                  # does inference need the occlusion mask?
    infers_mask = False                # does the generator predict it (a given one overrides)?

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg, self.device = cfg, device
        self.gan = gan_loss(cfg.gan_loss)
        self.nets: dict[str, nn.Module] = {}
        self.train_models: dict[str, nn.Module] = {}

    # -- construction --------------------------------------------------------------------

    def build(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizer_groups(self) -> dict[str, tuple[list[str], float]]:
        """{optimiser name: (model names, learning rate)}; "G" steps after "D"."""
        groups = {"G": ([self.generator], self.cfg.lr)}
        if self.discriminators:
            groups["D"] = (list(self.discriminators), self.cfg.lr_d)
        return groups

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # -- data ----------------------------------------------------------------------------

    def prepare(self, batch: dict) -> dict:
        """The loader's batch (image, occluded, mask in [0, 1]; or paired input/target/mask)
        as input, target in [-1, 1] and the mask (zeros where there is none)."""
        target = batch["image"] if "image" in batch else batch["target"]
        source = batch.get("occluded", batch.get("input", target))
        mask = batch.get("mask")
        if mask is None:
            mask = torch.zeros_like(target[:, :1])
        return {"input": to_signed(source), "target": to_signed(target), "mask": mask}

    # -- the step ------------------------------------------------------------------------

    def forward(self, models: dict, b: dict) -> dict:
        """The generator's forward with ``models``: {"output": [-1, 1] images, ...}."""
        raise NotImplementedError

    def generate(self, b: dict) -> dict:
        return self.forward(self.train_models, b)

    def fake_for_d(self, b: dict, gen: dict) -> torch.Tensor:
        return gen["output"].detach()

    def d_loss(self, b: dict, fake: torch.Tensor) -> dict:
        raise NotImplementedError

    def g_loss(self, b: dict, gen: dict) -> dict:
        raise NotImplementedError

    def after_step(self, b: dict, gen: dict) -> None:
        pass

    # -- inference -----------------------------------------------------------------------

    @torch.no_grad()
    def reconstruct(self, occluded: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """[0, 1] occluded images (and mask; None: none given) -> [0, 1] reconstructions,
        with the bare modules."""
        if mask is None and not self.infers_mask:
            mask = torch.zeros_like(occluded[:, :1])
        b = {"input": to_signed(occluded), "target": to_signed(occluded), "mask": mask}
        return to_unit(self._infer(b).float())

    def _infer(self, b: dict) -> torch.Tensor:
        return self.forward(self.nets, b)["output"]
