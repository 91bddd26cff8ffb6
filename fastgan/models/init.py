"""Weight initialisation as in pix2pix/CycleGAN, whose GANs are tuned for it: convolution and
linear weights N(0, gain) (DCGAN's 0.02), biases 0, norm scales N(1, gain), norm shifts 0."""

from __future__ import annotations

from torch import nn

from fastgan.nn import InstanceNormAct

__all__ = ["init_weights", "INIT_TYPES"]

INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, InstanceNormAct)


def _init_module(m: nn.Module, init_type: str, gain: float) -> None:
    if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
        w = m.weight
        if init_type == "normal":
            nn.init.normal_(w, 0.0, gain)
        elif init_type == "xavier":
            nn.init.xavier_normal_(w, gain=gain)
        elif init_type == "kaiming":
            nn.init.kaiming_normal_(w, a=0, mode="fan_in")
        else:
            nn.init.orthogonal_(w, gain=gain)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, _NORMS):
        if getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, gain)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


def init_weights(module: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every convolution, linear and norm layer of ``module`` in place and return it.

    init_type: "normal" (N(0, gain), pix2pix's default), "xavier" (xavier_normal with
    ``gain``), "kaiming" (kaiming_normal, fan_in; ``gain`` unused) or "orthogonal" (with
    ``gain``). Submodules marked ``_skip_init`` (a frozen, pretrained
    :class:`SemanticRegularizer` parser) are left alone.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"init_weights: module must be an nn.Module, got {type(module).__name__}")
    if init_type not in INIT_TYPES:
        raise ValueError(f"init_weights: init_type must be one of {', '.join(INIT_TYPES)}, "
                         f"got {init_type!r}")
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not gain > 0:
        raise ValueError(f"init_weights: gain must be a positive number, got {gain!r}")

    def visit(m: nn.Module) -> None:
        if getattr(m, "_skip_init", False):
            return
        _init_module(m, init_type, float(gain))
        for child in m.children():
            visit(child)

    visit(module)
    return module
