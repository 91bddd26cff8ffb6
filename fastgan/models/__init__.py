"""The networks of the applications: pix2pix U-Net + PatchGAN, SimGAN refiner + local
discriminator, face-completion generator + global/local discriminators + semantic
regulariser, and the face VAE; all built on fastgan.nn's fused Conv -> Norm -> Act blocks.
Generators take and return images in [-1, 1]."""

from fastgan.models.completion import (CompletionGenerator, GlobalDiscriminator, LocalDiscriminator,
                                       SemanticRegularizer, crop_around_mask)
from fastgan.models.init import init_weights
from fastgan.models.patchgan import PatchGANDiscriminator
from fastgan.models.registry import MODELS, build_model, count_parameters
from fastgan.models.simgan import SimGANDiscriminator, SimGANRefiner
from fastgan.models.unet import UNetGenerator, unet_64, unet_128, unet_256
from fastgan.models.vae import FaceVAE, VAEOutput, kl_divergence

__all__ = ["UNetGenerator", "unet_64", "unet_128", "unet_256", "PatchGANDiscriminator",
           "SimGANRefiner", "SimGANDiscriminator", "CompletionGenerator", "GlobalDiscriminator",
           "LocalDiscriminator", "SemanticRegularizer", "crop_around_mask", "FaceVAE", "VAEOutput",
           "kl_divergence", "init_weights", "build_model", "count_parameters", "MODELS"]
