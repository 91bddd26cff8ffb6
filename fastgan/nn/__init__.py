"""Building blocks of the models: fused InstanceNorm + activation, the
Conv -> Norm -> Act block of the PatchGAN and U-Net, and its dilated and residual variants."""

from fastgan.nn.blocks import DilatedConvNormAct, ResidualBlock
from fastgan.nn.norm_act import ConvNormAct, InstanceNormAct, instance_norm_act

__all__ = ["InstanceNormAct", "ConvNormAct", "instance_norm_act", "DilatedConvNormAct",
           "ResidualBlock"]
