"""The procedural face renderer: deterministic, sized right, faces where aligned faces are."""

import pytest
import torch

from fastgan.data.occlusion import MEAN_LANDMARKS
from fastgan.data.synthetic import N_PARAMS, draw_params, render, render_faces


pytestmark = pytest.mark.usefixtures("one_thread")


def test_deterministic_and_seed_dependent():
    a, la = render_faces(4, 32, seed=1)
    b, lb = render_faces(4, 32, seed=1)
    assert torch.equal(a, b) and torch.equal(la, lb)
    c, _ = render_faces(4, 32, seed=2)
    assert (a - c).abs().mean() > 0.05


@pytest.mark.parametrize("size", [8, 33, 64, 100])
def test_sizes_and_range(size):
    x, lm = render_faces(3, size, seed=0)
    assert x.shape == (3, 3, size, size) and x.dtype == torch.float32 and x.is_contiguous()
    assert lm.shape == (3, 5, 2)
    assert x.min() >= 0 and x.max() <= 1 and torch.isfinite(x).all()


def test_image_i_independent_of_count():
    few, lf = render_faces(3, 24, seed=5)
    many, lm = render_faces(9, 24, seed=5)
    assert torch.equal(few, many[:3]) and torch.equal(lf, lm[:3])
    assert torch.equal(draw_params(3, 5), draw_params(9, 5)[:3])


def test_faces_vary_and_sit_where_aligned_faces_do():
    x, lm = render_faces(32, 64, seed=0)
    assert x.std(0).mean() > 0.1  # images differ from each other
    # the landmarks are near CelebA's aligned mean, so MEAN_LANDMARKS fits synthetic faces too
    assert (lm.mean(0) - MEAN_LANDMARKS).abs().max() < 0.03
    assert (lm - MEAN_LANDMARKS).abs().max() < 0.12
    # the face is lighter/different at the eyes: the eye pixels are not the skin colour
    centre = x[:, :, 38, 32]  # below the nose, on the face
    corner = x[:, :, 2, 2]    # background
    assert (centre - corner).abs().sum(1).mean() > 0.1


def test_same_pixels_at_double_resolution_downsampled():
    small, _ = render_faces(2, 32, seed=3)
    big, _ = render_faces(2, 64, seed=3)
    down = torch.nn.functional.avg_pool2d(big, 2)
    assert (down - small).abs().mean() < 0.03  # the same faces, resolution-independent


def test_bad_input():
    with pytest.raises(ValueError, match="size must be an int >= 8"):
        render_faces(1, 4)
    with pytest.raises(ValueError, match=f"params must have shape \\(n, {N_PARAMS}\\)"):
        render(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n must be >= 0"):
        render_faces(-1)
    assert render_faces(0, 16)[0].shape == (0, 3, 16, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_cpu():
    cpu, lc = render_faces(4, 48, seed=0)
    gpu, lg = render_faces(4, 48, seed=0, device="cuda")
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() < 1e-3 and torch.allclose(lg.cpu(), lc, atol=1e-5)
