"""FID and KID (fastgan.metrics.frechet) against closed forms and direct formulas computed here."""

import warnings

import numpy as np
import pytest
import torch

from fastgan.metrics import frechet
from fastgan.metrics.frechet import SmallSampleWarning


def tiny_feature_net(seed=0, dim=12):
    """A small random-weight conv net: images (N, 3, H, W) -> (N, dim) features."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, dim, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()


def features(n, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 3, 24, 24, generator=g) * 0.8 + shift).clamp(0, 1)
    with torch.no_grad():
        return tiny_feature_net()(images).double().numpy()


def scipy_fid(a, b):
    """The textbook FID, computed independently with scipy's general matrix square root."""
    scipy_linalg = pytest.importorskip("scipy.linalg", reason="scipy is a test dependency (make test)")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def quiet_fid(a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        return frechet.fid(a, b)


def test_fid_of_a_set_against_itself_is_zero():
    a = features(200, 0)
    assert abs(quiet_fid(a, a)) < 1e-9


def test_fid_equals_the_closed_form_on_random_network_features():
    a, b = features(300, 1), features(300, 2, shift=0.15)
    ours, ref = quiet_fid(a, b), scipy_fid(a, b)
    assert ref > 1e-4  # the sets differ
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_of_gaussians_with_known_covariances():
    # diagonal covariances commute: FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)
    # a rotation of both covariances leaves the distance unchanged
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    got = frechet.frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-8)


def eigvals_fid(a, b):
    """FID with tr((S1 S2)^(1/2)) from the eigenvalues of the non-symmetric product (any rank)."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(s1 @ s2).real
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig, 0, None)).sum())


def test_fid_with_fewer_images_than_dimensions_is_exact():
    # rank-deficient covariances: the low-rank route (both sets small) and the eigen-decomposition
    # fallback of frechet_distance (singular S1) agree with the direct formula
    a, b = features(6, 3), features(8, 4, shift=0.1)
    assert abs(quiet_fid(a, a)) < 1e-9
    expected = eigvals_fid(a, b)
    assert quiet_fid(a, b) == pytest.approx(expected, rel=1e-7)
    stats = (*frechet.feature_stats(a), *frechet.feature_stats(b))
    assert frechet.frechet_distance(*stats) == pytest.approx(expected, rel=1e-7)
    # one set small, one large: the covariance route with a singular S1
    c = features(40, 5)
    assert quiet_fid(a, c) == pytest.approx(eigvals_fid(a, c), rel=1e-7)


def direct_mmd2(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written as explicit sums over pairs."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return sxx / (m * (m - 1)) + syy / (m * (m - 1)) - 2 * sxy / (m * m)


def test_kid_is_the_unbiased_polynomial_mmd():
    x, y = features(12, 4), features(12, 5, shift=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        mean, std = frechet.kid(x, y, subsets=3, subset_size=1000)  # clamped to 12: every subset is the whole set
    assert mean == pytest.approx(direct_mmd2(x, y), rel=1e-10)
    assert std == pytest.approx(0, abs=1e-12)
    assert frechet.polynomial_mmd2(x, x) == pytest.approx(direct_mmd2(x, x), abs=1e-12)


def test_kid_subsets_are_seeded():
    x, y = features(40, 6), features(40, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        a = frechet.kid(x, y, subsets=5, subset_size=10, seed=1)
        b = frechet.kid(x, y, subsets=5, subset_size=10, seed=1)
        c = frechet.kid(x, y, subsets=5, subset_size=10, seed=2)
    assert a == b and a != c


def test_small_sets_warn():
    a, b = features(50, 8), features(60, 9)
    with pytest.warns(SmallSampleWarning, match="50 and 60 images"):
        frechet.fid(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        frechet.fid(a, b, min_samples=50)  # no warning at the threshold


def test_bad_features_are_refused():
    with pytest.raises(ValueError, match="feature dimensions differ"):
        frechet.fid(np.zeros((4, 3)), np.zeros((4, 5)), min_samples=1)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet.fid(np.zeros((1, 3)), np.zeros((4, 3)), min_samples=1)
    with pytest.raises(ValueError, match="NaN"):
        frechet.feature_stats(np.full((4, 3), np.nan))
