"""Training: one loop for every application, recipes as data, checkpoints that never lose a run.

>>> from fastgan.train import TrainConfig, train, load_reconstructor
>>> result = train(TrainConfig(recipe="pix2pix", data="synthetic", size=64, steps=200, out="runs/p2p"))
>>> rec = load_reconstructor(result.checkpoint)

The names are imported on first use, so that ``fastgan --help`` (which reads only the
configuration's fields) does not load the loop, the models and torch.compile.
"""

import importlib

from fastgan.train.config import ConfigError, TrainConfig

_LAZY = {"train": "loop", "TrainResult": "loop", "TrainingDiverged": "loop",
         "Reconstructor": "inference", "load_reconstructor": "inference"}

__all__ = ["TrainConfig", "ConfigError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"fastgan.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fastgan.train' has no attribute {name!r}")
