"""One recipe per application; ``RECIPES[name](cfg, device)``."""

from fastgan.train.recipes.base import Recipe, recon_loss
from fastgan.train.recipes.completion import Completion
from fastgan.train.recipes.pix2pix import MaskRemoval, Pix2Pix
from fastgan.train.recipes.simgan import SimGAN
from fastgan.train.recipes.vae import VAE

RECIPES = {r.name: r for r in (Pix2Pix, MaskRemoval, SimGAN, Completion, VAE)}

__all__ = ["RECIPES", "Recipe", "recon_loss", "Pix2Pix", "MaskRemoval", "SimGAN", "Completion", "VAE"]
