"""Face-detection rate: the fraction of images in which OpenCV's frontal-face Haar cascade finds a
face, the check the face-mask-removal paper applies to its outputs.

The cascade is the one opencv-python-headless ships (``haarcascade_frontalface_default.xml`` under
``cv2.data.haarcascades``; OpenCV 5 dropped it, hence ``opencv-python-headless<5``). The settings
were chosen on the held-out shared CelebA faces (008001-008400, 89x109, centre 89x89 crop): a face
is found in 92.8 % of those 400 images (93.3 % at 64x64) and in none of 1,200 uniform-noise images
of 64, 89 and 128 px. (minNeighbors 5 with minSize 25 %: 93.8 % of the faces, but 2 noise images.)

- grey level = OpenCV's RGB -> grey conversion of the uint8 image;
- images whose smaller side is under ``UPSAMPLE_TO`` (256) px are upsampled to it (bilinear): the
  cascade's 24x24 window at scale steps of 1.1 misses more faces in 64-128 px images;
- ``scaleFactor=1.1``, ``minNeighbors=6``, ``minSize`` = 30 % of the smaller side (the faces of
  aligned crops fill about half of it; smaller hits are mostly false positives in textures).
"""

from __future__ import annotations

import numpy as np
import torch

from fastgan.data.io import to_uint8

UPSAMPLE_TO = 256
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 6
MIN_SIZE_FRACTION = 0.3
CASCADE = "haarcascade_frontalface_default.xml"


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("the face-detection rate needs OpenCV: pip install 'fastgan[eval]' "
                          "(or pip install 'opencv-python-headless<5')") from e
    return cv2


class FaceDetector:
    """``FaceDetector()(images) -> bool (N,)``: whether a face is found in each image; images are
    (N, 3, H, W) float in [0, 1] or uint8."""

    def __init__(self, upsample_to: int = UPSAMPLE_TO, scale_factor: float = SCALE_FACTOR,
                 min_neighbors: int = MIN_NEIGHBORS, min_size_fraction: float = MIN_SIZE_FRACTION):
        cv2 = _cv2()
        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 removed the Haar "
                              f"cascades): pip install 'opencv-python-headless<5'")
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV could not load its Haar cascade {path}")
        self.cv2 = cv2
        self.upsample_to = upsample_to
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction

    def count(self, image: np.ndarray) -> int:
        """Faces found in one (H, W, 3) uint8 RGB image."""
        cv2 = self.cv2
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        scale = self.upsample_to / min(grey.shape)
        if scale > 1:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        side = int(self.min_size_fraction * min(grey.shape))
        faces = self.cascade.detectMultiScale(grey, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors, minSize=(side, side))
        return len(faces)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"FaceDetector: images must be (N, 3, H, W), got {tuple(images.shape)}")
        arr = to_uint8(images.cpu()).permute(0, 2, 3, 1).numpy()
        return torch.tensor([self.count(a) > 0 for a in arr], dtype=torch.bool)


def face_detection_rate(images: torch.Tensor, detector: FaceDetector | None = None) -> float:
    """The fraction of ``images`` with at least one detected face."""
    found = (detector or FaceDetector())(images)
    return float(found.float().mean())
