"""Tiny training configurations shared by the training tests: 32 px synthetic faces,
8-channel networks, CPU, eager, no progress bar."""

from fastgan.train import TrainConfig

TINY = dict(recipe="pix2pix", data="synthetic", size=32, batch=4, steps=8, ngf=8, ndf=8, log_every=2,
            save_every=4, workers=0, synthetic_n=12, val_images=4, samples=2, compile=False,
            progress=False)
SMALL_RECIPE_PARTS = dict(latent_dim=16, history_size=6)  # the VAE's latent, SimGAN's history


def tiny_config(out, recipe: str = "pix2pix", **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "recipe": recipe, "out": str(out), **overrides})
