"""pix2pix (Isola et al. 2017) for occluded faces: a U-Net maps the occluded face to the
clean one, a conditional 70x70 PatchGAN judges (occluded, candidate) pairs, and the generator
minimises GAN + lambda * reconstruction (L1 with lambda 100 by default, as in pix2pix; or
cosine, SSIM, SSIM + L1 and their masked forms). ``mask-removal`` is the same recipe on
nose-mask occlusions with the cosine-sum loss, the face-mask-removal paper's best variant.

The discriminator sees the real and fake pairs in one batch (one forward instead of two; the
same values with instance norm, which is per image)."""

from __future__ import annotations

import torch

from fastgan.models import PatchGANDiscriminator, UNetGenerator
from fastgan.train.recipes.base import Recipe, recon_loss


class Pix2Pix(Recipe):
    name = "pix2pix"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.recon = recon_loss(cfg.recon_loss)
        self.compose = cfg.compose or cfg.recon_loss.startswith("masked-")
        self.uses_mask = self.compose

    def build(self):
        cfg = self.cfg
        num_downs = cfg.size.bit_length() - 1   # down to 1x1, as unet_64/128/256
        return {"G": UNetGenerator(3, 3, num_downs, ngf=cfg.ngf, norm=cfg.norm, dropout=cfg.dropout),
                "D": PatchGANDiscriminator(6, ndf=cfg.ndf, n_layers=cfg.n_layers, norm=cfg.norm)}

    def forward(self, models, b):
        raw = models["G"](b["input"])
        if self.compose:   # the known pixels stay: only the occluded region is generated
            m = b["mask"].to(raw.dtype)
            return {"output": raw * m + b["input"].to(raw.dtype) * (1 - m), "raw": raw}
        return {"output": raw}

    def d_loss(self, b, fake):
        cond = b["input"].to(fake.dtype)
        pairs = torch.cat([torch.cat([cond, b["target"].to(fake.dtype)], 1), torch.cat([cond, fake], 1)])
        logits = self.train_models["D"](pairs)
        n = b["input"].shape[0]
        real, fake_ = self.gan.d(logits[:n], logits[n:])
        return {"loss_d": 0.5 * (real + fake_), "d_real": real, "d_fake": fake_}

    def g_loss(self, b, gen):
        out = gen["output"]
        logits = self.nets["D"](torch.cat([b["input"].to(out.dtype), out], 1))
        adv = self.gan.g(logits)
        rec = self.recon(gen.get("raw", out), b["target"], b["mask"])
        total = self.cfg.gan_weight * adv + self.cfg.recon_weight * rec
        return {"loss_g": total, "g_gan": adv, "g_recon": rec}


class MaskRemoval(Pix2Pix):
    name = "mask-removal"
