"""The rows of the README quality tables. A row is a training run (recipe, options beyond
the data, size, batch and seed, and a budget in minutes or steps) and the score of its
recipe (``fastgan.quality.scoring``). Rows named ``*-default-*`` pass no options: they are
what a user gets from the defaults. Lever rows change one thing against the row they name
as ``against``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    name: str
    recipe: str
    lever: str                          # what the row is, in the table
    options: dict = field(default_factory=dict)
    minutes: float | None = None        # budget: CPU minutes ...
    steps: int | None = None            # ... or steps (the lever screens: robust to a busy CPU)
    against: str | None = None          # the row this one changes one thing of
    size: int = 64
    batch: int = 16

    def budget(self) -> str:
        return f"{self.minutes:g} min" if self.minutes is not None else f"{self.steps} steps"


# The configuration the defaults replaced (the starting point), spelled out.
_PIX2PIX_BEFORE = dict(recon_loss="l1", compose="none", ema=0.0, lr_decay="none", ngf=64, ndf=64)
_SSIM_L1_HALF = dict(recon_loss="ssim+l1", compose="none", ngf=32, ndf=32)
_SCREEN = 1500   # steps of a lever screen

_ROWS = [
    # pix2pix, nose-mask, 64 px: the defaults at the budgets
    Row("pix2pix-default-16", "pix2pix", "defaults", minutes=16),
    Row("pix2pix-default-8", "pix2pix", "defaults", minutes=8),
    Row("pix2pix-image-loss-16", "pix2pix", "SSIM + L1 over the whole composite (not over the hole)",
        dict(recon_loss="ssim+l1"), minutes=16, against="pix2pix-default-16"),
    Row("pix2pix-quarter-width-16", "pix2pix", "quarter width (ngf/ndf 16: ~2x the steps)",
        dict(ngf=16, ndf=16), minutes=16, against="pix2pix-default-16"),
    Row("pix2pix-before-16", "pix2pix", "previous defaults (L1, ngf 64, raw output)",
        dict(_PIX2PIX_BEFORE), minutes=16),
    # pix2pix levers, one change at a time, at a fixed step count
    Row("pix2pix-ssim-l1-screen", "pix2pix", "SSIM + L1, half width, raw output, no EMA, constant LR",
        dict(_SSIM_L1_HALF, ema=0.0, lr_decay="none"), steps=_SCREEN),
    Row("pix2pix-predicted-screen", "pix2pix", "+ predicted mask, input kept outside it",
        dict(_SSIM_L1_HALF, compose="predicted", ema=0.0, lr_decay="none"), steps=_SCREEN,
        against="pix2pix-ssim-l1-screen"),
    Row("pix2pix-ema-screen", "pix2pix", "+ generator EMA 0.999",
        dict(_SSIM_L1_HALF, compose="predicted", ema=0.999, lr_decay="none"), steps=_SCREEN,
        against="pix2pix-predicted-screen"),
    Row("pix2pix-decay-screen", "pix2pix", "+ linear LR decay over the second half",
        dict(_SSIM_L1_HALF, compose="predicted", ema=0.0, lr_decay="linear"), steps=_SCREEN,
        against="pix2pix-predicted-screen"),
    # mask removal: the paper's configuration against the defaults
    Row("mask-removal-default-3", "mask-removal", "defaults", minutes=3),
    Row("mask-removal-paper-3", "mask-removal", "paper: cosine-sum, ngf 64, raw output",
        dict(recon_loss="cosine-sum", compose="none", ema=0.0, lr_decay="none", ngf=64, ndf=64), minutes=3),
    # face completion, square holes: with and without the local discriminator, and the width
    Row("completion-default-3", "completion", "defaults (global + local D)", minutes=3),
    Row("completion-no-local-3", "completion", "no local D", dict(local_weight=0.0), minutes=3,
        against="completion-default-3"),
    Row("completion-full-width-3", "completion", "the paper's width (ngf/ndf 64)", dict(ngf=64, ndf=64),
        minutes=3, against="completion-default-3"),
    # VAE: face-masked SSIM + L1 against an L2-only VAE
    Row("vae-default-3", "vae", "defaults (face-masked SSIM + L1)", minutes=3),
    Row("vae-l2-3", "vae", "L2 only", dict(recon_loss="l2", ssim_alpha=0.0), minutes=3),
    # SimGAN: the refiner against the unrefined synthetic faces (scored in the same row)
    Row("simgan-default-3", "simgan", "defaults", minutes=3),
]

ROWS: dict[str, Row] = {r.name: r for r in _ROWS}

# `fastgan quality --table NAME`: the rows of each README table, in its order.
TABLES: dict[str, list[str]] = {
    "pix2pix": ["pix2pix-default-16", "pix2pix-default-8", "pix2pix-image-loss-16", "pix2pix-quarter-width-16",
                "pix2pix-before-16"],
    "pix2pix-levers": [r.name for r in _ROWS if r.name.endswith("-screen")],
    "mask-removal": ["mask-removal-default-3", "mask-removal-paper-3"],
    "completion": ["completion-default-3", "completion-no-local-3", "completion-full-width-3"],
    "vae": ["vae-default-3", "vae-l2-3"],
    "simgan": ["simgan-default-3"],
}
TABLES["all"] = [name for rows in TABLES.values() for name in rows]
