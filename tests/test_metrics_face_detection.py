"""Face-detection rate (fastgan.metrics.face_detection) with OpenCV's bundled Haar cascade."""

import sys
from pathlib import Path

import pytest
import torch

from fastgan.metrics import face_detection

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "celeba-89x109"

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed (pip install 'fastgan[eval]')")


@pytest.fixture(scope="module")
def detector():
    return face_detection.FaceDetector()


def test_faces_are_found_in_real_faces(detector):
    if not FACES.is_dir():
        pytest.skip(f"the shared faces are not at {FACES}")
    from fastgan.data import decode
    files = sorted(FACES.glob("*.jpg"))[8000:8048]  # held-out split, 48 images
    images = torch.stack([decode(f, 89)[0] for f in files])
    rate = face_detection.face_detection_rate(images, detector)
    assert rate >= 0.85, rate  # measured 0.928 on 400 of them


def test_no_faces_in_noise(detector):
    g = torch.Generator().manual_seed(0)
    for size in (64, 89, 128):
        noise = torch.rand(20, 3, size, size, generator=g)
        assert face_detection.face_detection_rate(noise, detector) == 0.0


def test_missing_opencv_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"fastgan\[eval\]"):
        face_detection.FaceDetector()


def test_bad_images_are_refused(detector):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        detector(torch.rand(2, 1, 32, 32))
