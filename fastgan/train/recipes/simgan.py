"""SimGAN (Shrivastava et al. 2017): a refiner makes procedural faces look like the real ones
while a self-regularisation term keeps it close to its input; a local discriminator judges
each patch, and half of each fake batch it sees comes from a history of earlier refined
images (``fastgan.train.history``, on the device).

Data: the batch holds "synthetic" (procedural faces) and "real" (``--data``), unpaired."""

from __future__ import annotations

import torch

import fastgan as fg
from fastgan.models import SimGANDiscriminator, SimGANRefiner
from fastgan.train.history import HistoryBuffer
from fastgan.train.recipes.base import Recipe, to_signed


class SimGAN(Recipe):
    name = "simgan"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format   # resolved by the trainer
        self.history = HistoryBuffer(cfg.history_size, (3, cfg.size, cfg.size), device=device,
                                     fraction=cfg.history_fraction, memory_format=fmt)
        self.generator_rng: torch.Generator | None = None   # set by the trainer

    def build(self):
        cfg = self.cfg
        return {"G": SimGANRefiner(3, 3, channels=cfg.ngf, n_blocks=cfg.refiner_blocks),
                "D": SimGANDiscriminator(3, channels=cfg.ndf)}

    def prepare(self, batch):
        syn = batch["synthetic"] if "synthetic" in batch else batch.get("occluded", batch.get("image"))
        real = batch.get("real", batch.get("image"))
        return {"input": to_signed(syn), "target": to_signed(syn), "real": to_signed(real),
                "mask": torch.zeros_like(syn[:, :1])}

    def forward(self, models, b):
        return {"output": models["G"](b["input"])}

    def fake_for_d(self, b, gen):
        return self.history.mix(gen["output"].detach(), self.generator_rng)

    def d_loss(self, b, fake):
        n = fake.shape[0]
        logits = self.train_models["D"](torch.cat([b["real"].to(fake.dtype), fake]))
        real, fake_ = self.gan.d(logits[:n], logits[n:])
        return {"loss_d": real + fake_, "d_real": real, "d_fake": fake_}

    def g_loss(self, b, gen):
        out = gen["output"]
        adv = self.gan.g(self.nets["D"](out))
        reg = fg.self_regularization_loss(out.float(), b["input"].float())
        total = self.cfg.gan_weight * adv + self.cfg.selfreg_weight * reg
        return {"loss_g": total, "g_gan": adv, "g_selfreg": reg}

    def after_step(self, b, gen):
        self.history.push(gen["output"].detach())

    def extra_state(self):
        return {"history": self.history.state_dict()}

    def load_extra_state(self, state):
        if "history" in state:
            self.history.load_state_dict(state["history"])
