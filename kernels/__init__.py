"""Triton kernels of fastgan, installed as ``fastgan.kernels``.

Only ``@triton.jit`` functions live here; the ops that launch them (layout
normalisation, grids, the finishing torch ops) are in ``fastgan/ops/triton_losses.py``.
"""
