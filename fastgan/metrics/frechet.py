"""Frechet distance (FID) and kernel inception distance (KID) between two sets of features.

FID: the Frechet distance between Gaussians fitted to the two feature sets,
``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``, with the covariances as numpy's
``np.cov`` gives them (unbiased, N - 1), as pytorch-fid computes them. Everything is float64.
``tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of S1 S2, computed from a
symmetric positive semi-definite matrix with the same eigenvalues: no general matrix square root
(scipy's ``sqrtm``, slow and with complex round-off to discard), exact for singular covariances:

- ``L^T S2 L`` with S1 = L L^T (Cholesky; for a singular S1, its symmetric square root from an
  eigen-decomposition, several times slower at 2048 dimensions);
- from features, when both sets have at most D images: with S1 = A^T A and S2 = B^T B (A, B the
  centred features over sqrt(N - 1)), the trace is the sum of the singular values of A B^T,
  an N1 x N2 matrix: no D x D work at all.

KID: the unbiased estimator of the squared MMD with the polynomial kernel
``k(x, y) = (x.y / d + 1)^3``, averaged over ``subsets`` random subsets of ``subset_size``
features from each set (as torch-fidelity: 100 subsets of 1000 by default; the subset size is
clamped to the smaller set here). The subsets come from a fixed seed, so a run repeats exactly.

Both are biased for small sets: FID on fewer than 2,048 images (the feature dimension of
Inception) is noticeably larger than its large-sample value, so ``fid`` warns
(``SmallSampleWarning``); compare FIDs only between runs with the same number of images.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

MIN_FID_SAMPLES = 2048


class SmallSampleWarning(UserWarning):
    """A set is too small for FID/KID to be comparable with published numbers."""


def _as_array(name: str, features) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    a = np.asarray(features, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"{name}: features must be a 2-D (N, D) array with N >= 2, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: features contain NaN or Inf")
    return a


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of (N, D) features, float64, covariance with N - 1."""
    a = _as_array("feature_stats", features)
    return a.mean(0), np.cov(a, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((s + s.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module docstring)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: shapes do not match: mu {mu1.shape}, {mu2.shape}; "
                         f"sigma {s1.shape}, {s2.shape}")
    return _distance(mu1, mu2, np.trace(s1), np.trace(s2), _trace_sqrt_product(s1, s2))


def _distance(mu1, mu2, tr1: float, tr2: float, tr_covmean: float) -> float:
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2 * tr_covmean)


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) for covariance matrices S1, S2."""
    try:
        factor = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError:  # singular S1
        factor = _psd_sqrt(s1)
    inner = factor.T @ s2 @ factor
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


def _fid_low_rank(a: np.ndarray, b: np.ndarray) -> float:
    """FID from features when both sets have at most D rows (see the module docstring)."""
    ca = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    cb = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    nuclear = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    return _distance(a.mean(0), b.mean(0), (ca * ca).sum(), (cb * cb).sum(), nuclear)


def _warn_small(metric: str, n1: int, n2: int, minimum: int) -> None:
    if min(n1, n2) < minimum:
        warnings.warn(f"{metric} on {n1} and {n2} images: fewer than {minimum} images per set gives a "
                      f"biased value (larger than the large-sample one); compare it only with runs on the "
                      f"same number of images", SmallSampleWarning, stacklevel=3)


def fid(features1, features2, *, min_samples: int = MIN_FID_SAMPLES) -> float:
    """FID between two (N, D) feature sets; warns when either has fewer than ``min_samples``."""
    a, b = _as_array("fid", features1), _as_array("fid", features2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"fid: feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    _warn_small("FID", len(a), len(b), min_samples)
    if max(len(a), len(b)) <= a.shape[1]:
        return _fid_low_rank(a, b)
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 of two equal-size samples with k(a, b) = (a.b / d + coef0)^degree."""
    d = x.shape[1]
    m = x.shape[0]
    kxx = (x @ x.T / d + coef0) ** degree
    kyy = (y @ y.T / d + coef0) ** degree
    kxy = (x @ y.T / d + coef0) ** degree
    off = m * (m - 1)
    return float((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2 * kxy.mean())


def kid(features1, features2, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        coef0: float = 1.0, seed: int = 0, min_samples: int = MIN_FID_SAMPLES) -> tuple[float, float]:
    """(mean, std) over ``subsets`` of the unbiased polynomial-kernel MMD^2 between random subsets
    of ``min(subset_size, N1, N2)`` features of each set (drawn without replacement, seed fixed)."""
    a, b = _as_array("kid", features1), _as_array("kid", features2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"kid: feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"kid: subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    _warn_small("KID", len(a), len(b), min_samples)
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)],
                              degree, coef0) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
