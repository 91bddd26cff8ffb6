"""Occlusion synthesis: determinism, binary masks, untouched pixels outside the mask, the
documented coverage ranges, landmark anchoring, dtypes, devices and bad input."""

import re

import pytest
import torch

from fastgan.data import occlusion as occ_mod
from fastgan.data.occlusion import (COVERAGE, KINDS, MEAN_LANDMARKS, coverage_stats, face_region,
                                    make_occluder, occlude)

SINGLE = [k for k in KINDS if k != "mix"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n=6, size=48, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g).to(dtype)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_per_seed_and_generator(kind):
    x = _images()
    a = occlude(x, kind, seed=5)
    b = occlude(x, kind, seed=5)
    c = occlude(x, kind, generator=torch.Generator().manual_seed(5))
    for t1, t2, t3 in zip(a, b, c):
        assert torch.equal(t1, t2) and torch.equal(t1, t3)
    d = occlude(x, kind, seed=6)
    assert not torch.equal(a[1], d[1])


@pytest.mark.parametrize("kind", KINDS)
def test_mask_binary_and_outside_untouched(kind):
    x = _images(8)
    out, mask = occlude(x, kind, seed=1)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert mask.shape == (8, 1, 48, 48) and mask.dtype == x.dtype
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (mask.sum((1, 2, 3)) > 0).all(), "every image gets some occlusion"
    keep = mask.expand_as(x) == 0
    assert torch.equal(out[keep], x[keep])
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("kind", [k for k in SINGLE if k != "blur"])
def test_mask_changes_the_pixels(kind):
    x = torch.full((4, 3, 48, 48), 0.5)
    out, mask = occlude(x, kind, seed=2, **({"fill": "noise"} if kind == "strokes" else {}))
    changed = (out != x).any(1, keepdim=True)
    # nearly every occluded pixel differs from the clean one (a fill can match by chance)
    assert changed[mask.bool()].float().mean() > 0.9


def test_blur_changes_pixels_inside_only():
    x = _images(4)
    out, mask = occlude(x, "blur", seed=3)
    inside = mask.bool().expand_as(x)
    assert (out[inside] - x[inside]).abs().mean() > 0.05
    assert torch.equal(out[~inside], x[~inside])


@pytest.mark.parametrize("kind", SINGLE)
def test_mask_of_image_i_does_not_depend_on_batch_size(kind):
    x = _images(6)
    _, m6 = occlude(x, kind, seed=9)
    _, m3 = occlude(x[:3], kind, seed=9)
    assert torch.equal(m6[:3], m3)


@pytest.mark.parametrize("kind", KINDS)
def test_coverage_within_documented_ranges(kind):
    """Fresh draws (another seed, another size) stay within the documented min-max, and their
    mean agrees with the documented mean within sampling error."""
    n = 160
    occ = make_occluder(kind)
    x = torch.zeros(n, 3, 64, 64)
    _, m = occ(x, seed=1234)
    face = face_region(x).float()
    stats = {"image": m.mean((1, 2, 3)), "face": (m * face).sum((1, 2, 3)) / face.sum((1, 2, 3))}
    for i, name in enumerate(("image", "face")):
        mean, lo, hi = COVERAGE[kind][i]
        vals = stats[name]
        assert vals.min() >= lo - 0.02, f"{kind} {name} coverage {vals.min():.3f} below the documented {lo}"
        assert vals.max() <= hi + 0.02, f"{kind} {name} coverage {vals.max():.3f} above the documented {hi}"
        se = float(vals.std()) / n ** 0.5
        assert abs(float(vals.mean()) - mean) <= 4 * se + 0.01, (
            f"{kind} {name} mean coverage {float(vals.mean()):.3f}, documented {mean}")


def test_coverage_table_in_docstring_matches_coverage():
    doc = occ_mod.__doc__
    for kind, (img, face) in COVERAGE.items():
        line = next(ln for ln in doc.splitlines() if ln.startswith(kind + " "))
        nums = [float(v) for v in re.findall(r"\d\.\d+", line)]
        assert nums == pytest.approx([*img, *face], abs=6e-4), line


def test_coverage_stats_reports_exact_full_face():
    s = coverage_stats("full", n=20, size=32, batch=10)
    assert s["face"] == (1.0, 1.0, 1.0)
    assert 0.2 < s["image"][0] < 0.35


def test_square_size_configurable_exactly():
    x = torch.zeros(5, 3, 40, 40)
    _, m = occlude(x, "square", seed=0, size=10)  # pixels
    assert (m.sum((1, 2, 3)) == 100).all()
    _, m = occlude(x, "square", seed=0, size=0.5)  # fraction of the side
    assert (m.sum((1, 2, 3)) == 400).all()
    out, m = occlude(x, "square", seed=0, size=0.25, fill="constant", value=0.75)
    assert torch.all(out[m.bool().expand_as(out)] == 0.75)
    # each square is one solid block
    rows, cols = m[:, 0].any(2).sum(1), m[:, 0].any(1).sum(1)
    assert (rows == 10).all() and (cols == 10).all()


def test_nose_mask_follows_the_landmarks():
    x = torch.zeros(1, 3, 64, 64)
    _, m0 = occlude(x, "nose-mask", seed=4, rotation=0, shift=0, scale=1.0)
    moved = MEAN_LANDMARKS + torch.tensor([8 / 64, 4 / 64])
    _, m1 = occlude(x, "nose-mask", seed=4, rotation=0, shift=0, scale=1.0, landmarks=moved)
    assert torch.equal(torch.roll(m0, shifts=(4, 8), dims=(2, 3)), m1)
    # anchored on the nose and mouth: it covers the mouth and the nose tip, not the eyes
    px = (MEAN_LANDMARKS * 64).long()
    for name, (cx, cy) in zip(("left eye", "right eye", "nose", "left mouth", "right mouth"), px.tolist()):
        assert m0[0, 0, cy, cx] == (0 if "eye" in name else 1), name


def test_nose_mask_crop_window_matches_full_image():
    x = _images(12, 40)
    lm = MEAN_LANDMARKS + 0.04 * torch.randn(12, 5, 2, generator=torch.Generator().manual_seed(0))
    a = make_occluder("nose-mask", textures=("plain", "pleats", "dots"))
    b = make_occluder("nose-mask", textures=("plain", "pleats", "dots"))
    b._crop = False
    oa, ma = a(x, seed=3, landmarks=lm)
    ob, mb = b(x, seed=3, landmarks=lm)
    assert torch.equal(ma, mb)
    assert torch.allclose(oa, ob, atol=1e-6)


def test_blur_crop_window_matches_full_image():
    x = _images(10, 48)
    a, b = make_occluder("blur"), make_occluder("blur")
    b._crop = False
    oa, ma = a(x, seed=8)
    ob, mb = b(x, seed=8)
    assert torch.equal(ma, mb)
    assert torch.allclose(oa, ob, atol=1e-6)


def test_nose_mask_colours_vary():
    x = torch.zeros(64, 3, 48, 48)
    out, m = occlude(x, "nose-mask", seed=0)
    mean_colour = (out * m).sum((2, 3)) / m.sum((2, 3))
    assert mean_colour.std(0).min() > 0.1  # not one colour


def test_mix_uses_several_kinds():
    occ = make_occluder("mix")
    occ(torch.zeros(40, 3, 32, 32), seed=0)
    assert len(set(occ.last_choice)) >= 4
    only = make_occluder("mix", weights={"square": 1.0}, options={"square": {"size": 8}})
    _, m = only(torch.zeros(4, 3, 32, 32), seed=0)
    assert (m.sum((1, 2, 3)) == 64).all()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(dtype):
    x = _images(3, 32)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    out, mask = occlude(x, "mix", seed=0)
    assert out.dtype == dtype and mask.dtype == dtype
    keep = mask.expand_as(x) == 0
    assert torch.equal(out[keep], x[keep])
    assert set(mask.unique().tolist()) <= {0, 1}


def test_grey_images_and_rectangular():
    x = torch.rand(2, 1, 40, 56)
    for kind in KINDS:
        out, mask = occlude(x, kind, seed=0)
        assert out.shape == x.shape and mask.shape == (2, 1, 40, 56)


def test_channels_last_and_noncontiguous_inputs():
    x = _images(4, 32)
    ref = occlude(x, "nose-mask", seed=1)
    cl = occlude(x.contiguous(memory_format=torch.channels_last), "nose-mask", seed=1)
    assert torch.equal(ref[1], cl[1]) and torch.allclose(ref[0], cl[0])


@pytest.mark.parametrize("bad, err, match", [
    (torch.zeros(3, 32, 32), ValueError, "4-D"),
    (torch.zeros(0, 3, 32, 32), ValueError, "empty batch"),
    (torch.zeros(1, 2, 32, 32), ValueError, "1 or 3 channels"),
    (torch.zeros(1, 3, 4, 4), ValueError, "at least 8x8"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.int32), TypeError, "uint8"),
    ([[0.0]], TypeError, "torch.Tensor"),
])
def test_bad_images(bad, err, match):
    with pytest.raises(err, match=match):
        occlude(bad, "square", seed=0)


def test_bad_options():
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match="occlusion kind must be one of"):
        occlude(x, "scarf")
    with pytest.raises(ValueError, match="landmarks must have shape"):
        occlude(x, "nose-mask", landmarks=torch.zeros(3, 5, 2))
    with pytest.raises(ValueError, match="fill must be one of"):
        make_occluder("square", fill="zeros")
    with pytest.raises(ValueError, match="no larger than the image side"):
        occlude(x, "square", size=64)
    with pytest.raises(ValueError, match="mix: weights"):
        make_occluder("mix", weights={"scarf": 1.0})
    with pytest.raises(TypeError, match="blur"):
        make_occluder("blur", colour=1)
    with pytest.raises(ValueError, match="generator or seed"):
        occlude(x, "blur", seed=0, generator=torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", KINDS)
def test_gpu_masks_match_cpu(kind):
    x = _images(8, 64)
    out_c, m_c = occlude(x, kind, seed=11)
    out_g, m_g = occlude(x.cuda(), kind, seed=11)
    assert out_g.device.type == "cuda"
    # the same parameters: masks agree up to pixels on a shape's edge (float rounding)
    assert (m_g.cpu() != m_c).float().mean() < 0.002
    again = occlude(x.cuda(), kind, seed=11)
    assert torch.equal(again[0], out_g) and torch.equal(again[1], m_g)
