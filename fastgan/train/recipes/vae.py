"""The face VAE with losses restricted to the face: the occluded face in, the clean face out,
SSIM + L1 (or L2) weighted by the face region, plus beta * KL; optionally a decoder head
that predicts the face mask (binary cross-entropy against the face region), so the model
finds the face itself. No discriminator."""

from __future__ import annotations

from torch.nn import functional as F

import fastgan as fg
from fastgan.data import face_region
from fastgan.models import FaceVAE, kl_divergence
from fastgan.train.recipes.base import Recipe


class VAE(Recipe):
    name = "vae"
    discriminators = ()

    def build(self):
        cfg = self.cfg
        norm = "batch" if cfg.norm == "instance" else cfg.norm   # instance norm of 4x4 maps is noise
        return {"G": FaceVAE(3, cfg.size, latent_dim=cfg.latent_dim, channels=cfg.ngf,
                             mask_head=cfg.mask_head, norm=norm)}

    def prepare(self, batch):
        b = super().prepare(batch)
        b["face"] = face_region(b["target"], batch.get("landmarks")).to(b["target"].dtype)
        return b

    def forward(self, models, b):
        out = models["G"](b["input"])
        gen = {"output": out.recon, "mu": out.mu, "logvar": out.logvar}
        if out.mask_logits is not None:
            gen["mask_logits"] = out.mask_logits
        return gen

    def g_loss(self, b, gen):
        cfg = self.cfg
        x, y, w = gen["output"].float(), b["target"].float(), b["face"]
        pixel = fg.masked_l1(x, y, w) if cfg.recon_loss != "l2" else fg.masked_mse(x, y, w)
        ssim = fg.ssim_loss(x, y, data_range=2.0, mask=w)
        rec = cfg.ssim_alpha * ssim + (1 - cfg.ssim_alpha) * pixel
        # KL per image element, so beta = 1 keeps the ELBO's balance with a per-pixel mean loss
        kl = kl_divergence(gen["mu"].float(), gen["logvar"].float()) / y[0].numel()
        total = cfg.recon_weight * rec + cfg.kl_beta * kl
        parts = {"g_ssim": ssim, "g_pixel": pixel, "g_kl": kl}
        if "mask_logits" in gen:
            m = F.binary_cross_entropy_with_logits(gen["mask_logits"].float(), w)
            total = total + cfg.mask_weight * m
            parts["g_mask"] = m
        return {"loss_g": total, **parts}
