"""Evaluation metrics for face reconstruction: SSIM / MS-SSIM / PSNR / L1 over the full image and
over the occluded region, FID and KID on Inception-v3 features from a local weights file, LPIPS
from a local weights file, the face-detection rate of OpenCV's Haar cascade, grouping per
occlusion kind and mask-area bin, and the ``fastgan eval`` report.

>>> from fastgan.metrics import image_metrics, fid, kid, load_inception
>>> per_image = image_metrics(output, target, mask)      # {"ssim": (N,), "masked_psnr": (N,), ...}
>>> net = load_inception("pt_inception-2015-12-05-6726825d.pth")
>>> fid(net(outputs), net(targets))

OpenCV (face detection) is imported only when a detector is made, and every name here on its first
use, so that ``fastgan --help`` (which builds the eval parser) loads none of the metrics.
"""

import importlib

_LAZY = {
    "Evaluator": "evaluate",
    "evaluate_checkpoint": "evaluate",
    "evaluate_pairs": "evaluate",
    "write_outputs": "evaluate",
    "FaceDetector": "face_detection",
    "face_detection_rate": "face_detection",
    "SmallSampleWarning": "frechet",
    "feature_stats": "frechet",
    "fid": "frechet",
    "frechet_distance": "frechet",
    "kid": "frechet",
    "AREA_BINS": "grouping",
    "area_bin": "grouping",
    "group_summaries": "grouping",
    "kind_seed": "grouping",
    "occlude_chunk": "grouping",
    "PSNR_CAP_DB": "image",
    "image_metrics": "image",
    "ms_ssim_scales": "image",
    "FIDInceptionV3": "inception",
    "find_inception_weights": "inception",
    "load_inception": "inception",
    "LPIPS": "lpips",
    "load_lpips": "lpips",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"fastgan.metrics.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fastgan.metrics' has no attribute {name!r}")
