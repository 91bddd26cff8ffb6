"""Evaluation metrics for face reconstruction: SSIM / MS-SSIM / PSNR / L1 over the full image and
over the occluded region, FID and KID on Inception-v3 features from a local weights file, LPIPS
from a local weights file, the face-detection rate of OpenCV's Haar cascade, grouping per
occlusion kind and mask-area bin, and the ``fastgan eval`` report.

>>> from fastgan.metrics import image_metrics, fid, kid, load_inception
>>> per_image = image_metrics(output, target, mask)      # {"ssim": (N,), "masked_psnr": (N,), ...}
>>> net = load_inception("pt_inception-2015-12-05-6726825d.pth")
>>> fid(net(outputs), net(targets))

OpenCV (face detection) is imported only when a detector is made.
"""

from fastgan.metrics.evaluate import Evaluator, evaluate_checkpoint, evaluate_pairs, write_outputs
from fastgan.metrics.face_detection import FaceDetector, face_detection_rate
from fastgan.metrics.frechet import SmallSampleWarning, feature_stats, fid, frechet_distance, kid
from fastgan.metrics.grouping import AREA_BINS, area_bin, group_summaries, kind_seed, occlude_chunk
from fastgan.metrics.image import PSNR_CAP_DB, image_metrics, ms_ssim_scales
from fastgan.metrics.inception import FIDInceptionV3, find_inception_weights, load_inception
from fastgan.metrics.lpips import LPIPS, load_lpips

__all__ = [
    "Evaluator", "evaluate_checkpoint", "evaluate_pairs", "write_outputs",
    "FaceDetector", "face_detection_rate",
    "SmallSampleWarning", "feature_stats", "fid", "frechet_distance", "kid",
    "AREA_BINS", "area_bin", "group_summaries", "kind_seed", "occlude_chunk",
    "PSNR_CAP_DB", "image_metrics", "ms_ssim_scales",
    "FIDInceptionV3", "find_inception_weights", "load_inception",
    "LPIPS", "load_lpips",
]
