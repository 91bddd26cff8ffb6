"""Face data: datasets, caching, the device loader, occlusion synthesis and procedural faces.

>>> from fastgan.data import CelebA, FaceLoader, occlude, render_faces
>>> ds = CelebA("data/celeba", "train", size=128, cache="memory")
>>> for batch in FaceLoader(ds, 64, occlusion="mix"):   # image, occluded, mask on the device
...     ...
"""

from fastgan.data.datasets import (CELEBA_SPLITS, SHARED_FACES_SPLIT, CelebA, FaceDataset, ImageFolder,
                                   PairedFolder, SkippedFilesWarning, SyntheticFaces, TwoDomain,
                                   open_dataset)
from fastgan.data.io import ImageReadError, decode, make_grid, write_png
from fastgan.data.loader import FaceLoader
from fastgan.data.occlusion import KINDS, MEAN_LANDMARKS, Occluder, coverage_stats, face_region, make_occluder, occlude
from fastgan.data.synthetic import render_faces

__all__ = [
    "CELEBA_SPLITS", "SHARED_FACES_SPLIT", "CelebA", "FaceDataset", "ImageFolder", "PairedFolder",
    "SkippedFilesWarning", "SyntheticFaces", "TwoDomain", "open_dataset",
    "ImageReadError", "decode", "make_grid", "write_png",
    "FaceLoader",
    "KINDS", "MEAN_LANDMARKS", "Occluder", "coverage_stats", "face_region", "make_occluder", "occlude",
    "render_faces",
]
