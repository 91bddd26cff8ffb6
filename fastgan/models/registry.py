"""Models by name, so recipes and configs can name them as plain strings."""

from __future__ import annotations

from typing import Callable

from torch import nn

from fastgan.models.completion import CompletionGenerator, GlobalDiscriminator, LocalDiscriminator
from fastgan.models.init import init_weights
from fastgan.models.patchgan import PatchGANDiscriminator
from fastgan.models.simgan import SimGANDiscriminator, SimGANRefiner
from fastgan.models.unet import unet_64, unet_128, unet_256
from fastgan.models.vae import FaceVAE

__all__ = ["MODELS", "build_model", "count_parameters"]

MODELS: dict[str, Callable[..., nn.Module]] = {
    "unet_64": unet_64,
    "unet_128": unet_128,
    "unet_256": unet_256,
    "patchgan": PatchGANDiscriminator,
    "simgan_refiner": SimGANRefiner,
    "simgan_discriminator": SimGANDiscriminator,
    "completion_generator": CompletionGenerator,
    "global_discriminator": GlobalDiscriminator,
    "local_discriminator": LocalDiscriminator,
    "vae": FaceVAE,
}


def build_model(name: str, *, init: bool = True, init_type: str = "normal", init_gain: float = 0.02,
                **kwargs) -> nn.Module:
    """``MODELS[name](**kwargs)``, initialised with :func:`init_weights` (pix2pix N(0, 0.02))
    unless ``init=False`` (then PyTorch's default initialisation stays)."""
    if name not in MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; expected one of {', '.join(MODELS)}")
    model = MODELS[name](**kwargs)
    return init_weights(model, init_type, init_gain) if init else model


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameter elements (only those with ``requires_grad`` by default)."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"count_parameters: module must be an nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
