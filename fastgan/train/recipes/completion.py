"""Face completion (Iizuka et al. 2017; Li et al. 2017, "Generative Face Completion"): an
encoder-decoder with dilated convolutions fills the occluded region (square occlusions by
default), a global discriminator judges the whole completed face and a local one the crop
around the filled region; optionally Li et al.'s semantic parsing regulariser, around a
frozen face parser given as a ``torch.export`` file."""

from __future__ import annotations

import torch

from fastgan.models import (CompletionGenerator, GlobalDiscriminator, LocalDiscriminator,
                            SemanticRegularizer, crop_around_mask)
from fastgan.train.recipes.base import Recipe, recon_loss


class Completion(Recipe):
    name = "completion"
    discriminators = ("D", "D_local")
    uses_mask = True

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.recon = recon_loss(cfg.recon_loss)
        self.local = cfg.size // 2
        # --local-weight 0: no local discriminator at all (not one trained for nothing), so a
        # run without it spends its whole budget on the rest
        self.has_local = cfg.local_weight > 0
        if not self.has_local:
            self.discriminators = ("D",)

    def build(self):
        cfg = self.cfg
        models = {"G": CompletionGenerator(4, 3, channels=cfg.ngf, norm=cfg.norm),
                  "D": GlobalDiscriminator(3, cfg.size, channels=cfg.ndf, norm=cfg.norm)}
        if self.has_local:
            models["D_local"] = LocalDiscriminator(3, self.local, channels=cfg.ndf, norm=cfg.norm)
        if cfg.parsing_weight > 0:
            parser = _ExportedParser(torch.export.load(cfg.parsing_model).module().to(self.device))
            models["parsing"] = SemanticRegularizer(parser, weight=cfg.parsing_weight)
        return models

    def forward(self, models, b):
        raw = models["G"](b["input"], b["mask"])
        m = b["mask"].to(raw.dtype)
        return {"output": raw * m + b["input"].to(raw.dtype) * (1 - m), "raw": raw}

    def d_loss(self, b, fake):
        n = fake.shape[0]
        images = torch.cat([b["target"].to(fake.dtype), fake])
        masks = torch.cat([b["mask"], b["mask"]])
        g_logits = self.train_models["D"](images)
        g_real, g_fake = self.gan.d(g_logits[:n], g_logits[n:])
        if not self.has_local:
            return {"loss_d": g_real + g_fake, "d_global": g_real + g_fake}
        l_logits = self.train_models["D_local"](crop_around_mask(images, masks, self.local))
        l_real, l_fake = self.gan.d(l_logits[:n], l_logits[n:])
        w = self.cfg.local_weight
        return {"loss_d": g_real + g_fake + w * (l_real + l_fake), "d_global": g_real + g_fake,
                "d_local": l_real + l_fake}

    def g_loss(self, b, gen):
        out = gen["output"]
        adv_g = self.gan.g(self.nets["D"](out))
        rec = self.recon(gen["raw"], b["target"], b["mask"])
        cfg = self.cfg
        parts = {"g_recon": rec, "g_global": adv_g}
        adv = adv_g
        if self.has_local:
            parts["g_local"] = self.gan.g(self.nets["D_local"](crop_around_mask(out, b["mask"], self.local)))
            adv = adv_g + cfg.local_weight * parts["g_local"]
        total = cfg.recon_weight * rec + cfg.gan_weight * adv
        if "parsing" in self.nets:
            parse = self.nets["parsing"](out.float(), b["target"].float())
            total = total + parse
            parts["g_parsing"] = parse
        return {"loss_g": total, **parts}


class _ExportedParser(torch.nn.Module):
    """A ``torch.export``ed parser (export it with a dynamic batch dimension) held outside the
    module tree: exported modules refuse ``.train()`` / ``.eval()``, which the regulariser and
    the trainer call; it is frozen and only ever runs in inference mode anyway."""

    def __init__(self, module):
        super().__init__()
        object.__setattr__(self, "_exported", module)
        for p in module.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self._exported(x)
