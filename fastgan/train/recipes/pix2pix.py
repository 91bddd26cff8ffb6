"""pix2pix (Isola et al. 2017) for occluded faces: a U-Net maps the occluded face to the
clean one, a conditional 70x70 PatchGAN judges (occluded, candidate) pairs, and the generator
minimises GAN + lambda * reconstruction (L1 with lambda 100 by default, as in pix2pix; or
cosine, SSIM, SSIM + L1 and their masked forms). ``mask-removal`` is the same recipe on
nose-mask occlusions with the cosine-sum loss, the face-mask-removal paper's best variant.

The discriminator sees the real and fake pairs in one batch (one forward instead of two; the
same values with instance norm, which is per image)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from fastgan.models import PatchGANDiscriminator, UNetGenerator
from fastgan.train.recipes.base import Recipe, recon_loss


class Pix2Pix(Recipe):
    name = "pix2pix"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.recon = recon_loss(cfg.recon_loss)
        # a masked loss only sees the occluded region, so the rest must come from the input
        self.compose = "given" if cfg.compose == "none" and cfg.recon_loss.startswith("masked-") \
            else cfg.compose
        self.uses_mask = self.compose == "given"
        self.infers_mask = self.compose == "predicted"

    def build(self):
        cfg = self.cfg
        num_downs = cfg.size.bit_length() - 1   # down to 1x1, as unet_64/128/256
        out_channels = 4 if self.infers_mask else 3   # + the occlusion mask, as tanh in [-1, 1]
        return {"G": UNetGenerator(3, out_channels, num_downs, ngf=cfg.ngf, norm=cfg.norm,
                                   dropout=cfg.dropout),
                "D": PatchGANDiscriminator(6, ndf=cfg.ndf, n_layers=cfg.n_layers, norm=cfg.norm)}

    def forward(self, models, b, mask=None):
        """``mask``: compose with it instead of the predicted one (inference with a mask)."""
        out = models["G"](b["input"])
        raw = out[:, :3]
        gen = {"raw": raw}
        if self.infers_mask:
            gen["mask_prob"] = (out[:, 3:] + 1) * 0.5
        if self.compose == "none":
            gen["output"] = raw
            return gen
        # the known pixels stay: only the occluded region is generated. Training composes
        # with the predicted mask too, so that inference without a mask does what training did.
        if mask is None:
            mask = gen["mask_prob"] if self.infers_mask else b["mask"]
        m = mask.to(raw.dtype)
        gen["output"] = raw * m + b["input"].to(raw.dtype) * (1 - m)
        return gen

    def _infer(self, b):
        return self.forward(self.nets, b, mask=b["mask"])["output"]

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
        # a masked loss scores the raw output inside the mask; the others the composite
        rec_of = gen["raw"] if self.cfg.recon_loss.startswith("masked-") else out
        rec = self.recon(rec_of, b["target"], b["mask"])
        total = self.cfg.gan_weight * adv + self.cfg.recon_weight * rec
        parts = {"g_gan": adv, "g_recon": rec}
        if self.infers_mask:
            prob = gen["mask_prob"].float().clamp(1e-6, 1 - 1e-6)
            # BCE of (tanh + 1) / 2 equals BCE with logits of 2x the pre-activation
            mask = F.binary_cross_entropy(prob, b["mask"].float())
            total = total + self.cfg.recon_weight * self.cfg.mask_weight * mask
            parts["g_mask"] = mask
        return {"loss_g": total, **parts}


class MaskRemoval(Pix2Pix):
    name = "mask-removal"
