"""Training: one loop for every application, recipes as data, checkpoints that never lose a run.

>>> from fastgan.train import TrainConfig, train, load_reconstructor
>>> result = train(TrainConfig(recipe="pix2pix", data="synthetic", size=64, steps=200, out="runs/p2p"))
>>> rec = load_reconstructor(result.checkpoint)
"""

from fastgan.train.config import ConfigError, TrainConfig
from fastgan.train.inference import Reconstructor, load_reconstructor
from fastgan.train.loop import TrainingDiverged, TrainResult, train

__all__ = ["TrainConfig", "ConfigError", "train", "TrainResult", "TrainingDiverged",
           "Reconstructor", "load_reconstructor"]
