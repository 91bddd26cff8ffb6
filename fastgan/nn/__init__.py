"""Building blocks of the models: fused InstanceNorm + activation and the
Conv -> Norm -> Act block of the PatchGAN and U-Net."""

from fastgan.nn.norm_act import ConvNormAct, InstanceNormAct, instance_norm_act

__all__ = ["InstanceNormAct", "ConvNormAct", "instance_norm_act"]
