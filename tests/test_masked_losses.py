"""The C++ CPU kernels of the masked pointwise losses and the cosine loss against the
plain-PyTorch reference: values and gradients, every reduction, mask form, dtype and
memory layout."""

import pytest
import torch
import torch.nn.functional as F

import fastgan as fg
from fastgan import reference as R

from conftest import TOL, make_layout, needs_cpu_kernels

pytestmark = needs_cpu_kernels

LOSSES = {
    "masked_l1": (fg.masked_l1, R.masked_l1),
    "masked_mse": (fg.masked_mse, R.masked_mse),
    "masked_charbonnier": (fg.masked_charbonnier, R.masked_charbonnier),
    "cosine_per_image": (fg.cosine_similarity_loss, R.cosine_similarity_loss),
    "cosine_per_pixel": (lambda *a, **k: fg.cosine_similarity_loss(*a, dim=1, **k),
                         lambda *a, **k: R.cosine_similarity_loss(*a, dim=1, **k)),
}
SHAPE = (3, 3, 19, 23)  # odd sizes: no chunk or vector width divides them


def _inputs(dtype, mask_kind, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=g).to(dtype)
    y = torch.randn(SHAPE, generator=g).to(dtype)
    n, c, h, w = SHAPE
    if mask_kind == "none":
        mask = None
    elif mask_kind == "pixel":
        mask = torch.rand(n, 1, h, w, generator=g).to(dtype)
    elif mask_kind == "full":
        mask = torch.rand(n, c, h, w, generator=g).to(dtype)
    else:  # binary
        mask = torch.rand(n, 1, h, w, generator=g) > 0.5
    x, y = make_layout(x, layout), make_layout(y, layout)
    if mask is not None and mask_kind == "full":
        mask = make_layout(mask, layout)
    return x.requires_grad_(), y.requires_grad_(), mask


def _run(fn, x, y, mask, reduction):
    loss = fn(x, y, mask, reduction=reduction)
    # Weight the per-image losses differently so `none` gradients are checked per image.
    weights = torch.arange(1, loss.numel() + 1, dtype=loss.dtype).view(loss.shape)
    gx, gy = torch.autograd.grad((loss * weights).sum(), (x, y))
    return loss, gx, gy


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("mask_kind", ["none", "pixel", "full", "binary"])
def test_matches_reference_fp32(name, reduction, mask_kind):
    fast, ref = LOSSES[name]
    x, y, mask = _inputs(torch.float32, mask_kind, "contiguous")
    got, want = _run(fast, x, y, mask, reduction), _run(ref, x, y, mask, reduction)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[torch.float32])


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
def test_matches_reference_dtypes_and_layouts(name, dtype, layout):
    fast, ref = LOSSES[name]
    x, y, mask = _inputs(dtype, "full", layout)
    got, want = _run(fast, x, y, mask, "mean"), _run(ref, x, y, mask, "mean")
    for a, b in zip(got, want):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("layout", ["channels_last", "sliced"])
def test_pixel_mask_layouts(name, layout):
    fast, ref = LOSSES[name]
    x, y, mask = _inputs(torch.float32, "pixel", layout)
    got, want = _run(fast, x, y, mask, "none"), _run(ref, x, y, mask, "none")
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[torch.float32])


def test_gradient_keeps_channels_last():
    x, y, mask = _inputs(torch.float32, "pixel", "channels_last")
    fg.masked_l1(x, y, mask).backward()
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_zero_mask_gives_zero_and_zero_grads(name, reduction):
    fast, _ = LOSSES[name]
    x, y, _ = _inputs(torch.float32, "none", "contiguous")
    mask = torch.zeros(x.shape[0], 1, *x.shape[2:])
    loss, gx, gy = _run(fast, x, y, mask, reduction)
    assert torch.isfinite(loss).all() and torch.isfinite(gx).all() and torch.isfinite(gy).all()
    assert not gx.any() and not gy.any()
    if name.startswith("masked"):
        assert not loss.any()


def test_one_image_fully_masked_out_in_none_reduction():
    x, y, _ = _inputs(torch.float32, "none", "contiguous")
    mask = torch.ones(x.shape[0], 1, *x.shape[2:])
    mask[1] = 0
    loss, gx, _ = _run(fg.masked_l1, x, y, mask, "none")
    assert loss[1] == 0 and not gx[1].any() and loss[0] > 0


def test_unmasked_losses_equal_torch():
    x, y, _ = _inputs(torch.float32, "none", "contiguous")
    torch.testing.assert_close(fg.masked_l1(x, y), F.l1_loss(x, y))
    torch.testing.assert_close(fg.masked_mse(x, y), F.mse_loss(x, y))
    torch.testing.assert_close(fg.masked_l1(x, y, reduction="sum"), F.l1_loss(x, y, reduction="sum"))
    per_pixel = 1 - F.cosine_similarity(x, y, dim=1)
    torch.testing.assert_close(fg.cosine_similarity_loss(x, y, dim=1, reduction="mean"), per_pixel.mean())
    per_image = 1 - F.cosine_similarity(x.flatten(1), y.flatten(1), dim=1)
    torch.testing.assert_close(fg.cosine_similarity_loss(x, y), per_image.sum())
    torch.testing.assert_close(fg.self_regularization_loss(x, y), F.l1_loss(x, y))


def test_binary_mask_selects_pixels():
    x, y, _ = _inputs(torch.float32, "none", "contiguous")
    mask = torch.zeros(x.shape[0], 1, *x.shape[2:], dtype=torch.bool)
    mask[:, :, 3:9, 4:15] = True
    want = (x - y).abs()[mask.expand_as(x)].mean()
    torch.testing.assert_close(fg.masked_l1(x, y, mask), want)


def test_only_x_requires_grad():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    y = torch.randn(2, 3, 8, 8)
    for fn in (fg.masked_l1, fg.cosine_similarity_loss):
        fn(x, y).backward()
        assert x.grad is not None and y.grad is None
        x.grad = None


def test_results_do_not_depend_on_thread_count():
    x, y, mask = _inputs(torch.float32, "pixel", "contiguous")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fg.masked_mse(x, y, mask), fg.cosine_similarity_loss(x, y, mask)
        torch.set_num_threads(max(2, threads))
        many = fg.masked_mse(x, y, mask), fg.cosine_similarity_loss(x, y, mask)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(one, many))


def test_large_image_crosses_chunk_boundaries():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 130, 70, generator=g, requires_grad=True)  # 9100 px > one chunk
    y = torch.randn(2, 3, 130, 70, generator=g, requires_grad=True)
    mask = torch.rand(2, 1, 130, 70, generator=g)
    for name, (fast, ref) in LOSSES.items():
        got, want = _run(fast, x, y, mask, "none"), _run(ref, x, y, mask, "none")
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_modules_match_functions():
    from fastgan.losses import (CosineSimilarityLoss, MaskedCharbonnierLoss, MaskedL1Loss,
                                MaskedMSELoss, SelfRegularizationLoss)

    x, y, mask = _inputs(torch.float32, "pixel", "contiguous")
    assert torch.equal(MaskedL1Loss()(x, y, mask), fg.masked_l1(x, y, mask))
    assert torch.equal(MaskedMSELoss("sum")(x, y, mask), fg.masked_mse(x, y, mask, reduction="sum"))
    assert torch.equal(MaskedCharbonnierLoss(eps=0.1)(x, y), fg.masked_charbonnier(x, y, eps=0.1))
    assert torch.equal(CosineSimilarityLoss("mean", dim=1)(x, y, mask),
                       fg.cosine_similarity_loss(x, y, mask, reduction="mean", dim=1))
    torch.testing.assert_close(SelfRegularizationLoss(0.5)(x, y), 0.5 * F.l1_loss(x, y))
    with pytest.raises(ValueError, match="reduction"):
        MaskedL1Loss("avg")


@pytest.mark.parametrize("fn", [fg.masked_l1, fg.masked_mse, fg.masked_charbonnier])
def test_stored_gradient_survives_retain_graph_and_scaling(fn):
    """The CPU path stores d loss / d x in the forward: a second backward through the same
    graph, and an upstream gradient other than one, must still give exact gradients."""
    x, y, mask = _inputs(torch.float32, "pixel", "contiguous")
    ref_loss = R.masked_loss(x, y, mask, kind={fg.masked_l1: "l1", fg.masked_mse: "mse"}.get(fn, "charbonnier"))
    (want,) = torch.autograd.grad(ref_loss, x)
    loss = fn(x, y, mask)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward(retain_graph=True)  # accumulates: must not have mutated the stored buffer
    torch.testing.assert_close(first, want)
    torch.testing.assert_close(x.grad, 2 * want)
    (scaled,) = torch.autograd.grad(loss * 3.0, x)
    torch.testing.assert_close(scaled, 3 * want)


def test_forward_without_grad_stores_nothing():
    x, y, mask = _inputs(torch.float32, "pixel", "contiguous")
    with torch.no_grad():
        loss = fg.masked_l1(x, y, mask)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, R.masked_l1(x.detach(), y.detach(), mask))


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("n", [1, 8])  # 1: chunks in parallel; 8: image by image (2 threads)
@pytest.mark.parametrize("mask_kind", ["none", "pixel", "full"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
# 37x61: more than one 1024-pixel chunk per image, odd rows (scalar tails); 48x64: rows the
# float AVX2 loops run whole, with streamed gradient stores.
@pytest.mark.parametrize("hw", [(37, 61), (48, 64)])
def test_cosine_forward_with_grad_equals_two_passes(dim, n, mask_kind, layout, hw):
    """The fused op (what training runs) gives the forward op's loss and the backward
    op's gradients: the same chunk sums in the same order, so equal to the last bit."""
    g = torch.Generator().manual_seed(n)
    shape = (n, 3, *hw)
    x = make_layout(torch.randn(shape, generator=g), layout)
    y = make_layout(torch.randn(shape, generator=g), layout)
    mask = {"none": None, "pixel": torch.rand(n, 1, *hw, generator=g),
            "full": torch.rand(shape, generator=g)}[mask_kind]
    ops = torch.ops.fastgan
    for reduction in (0, 1, 2):
        with torch.no_grad():
            loss, stats = ops.cosine_loss_forward(x, y, mask, dim, 1e-8, reduction)
            gx, gy = ops.cosine_loss_backward(torch.ones_like(loss), x, y, mask, stats, dim, 1e-8,
                                              reduction, True, True)
            fused, fgx, fgy = ops.cosine_loss_forward_with_grad(x, y, mask, dim, 1e-8, reduction,
                                                                True, True)
        assert torch.equal(fused, loss)
        assert torch.equal(fgx, gx) and torch.equal(fgy, gy)
        assert gx.abs().sum() > 0


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("mask_kind", ["none", "pixel", "full"])
def test_float32_vector_loops_match_float64(name, mask_kind):
    """Float32 runs through the AVX2 rows where the build has them (csrc/cpu/*_avx2.h):
    rows long and 32-byte aligned enough for streamed gradient stores (H*W a multiple of
    8, several chunks per image), and exact ties x == y, where L1's slope sign(0) is 0."""
    g = torch.Generator().manual_seed(5)
    shape = (2, 3, 48, 64)  # 3072 px: three cosine chunks of 1024, one pointwise chunk
    x = torch.randn(shape, generator=g)
    y = torch.randn(shape, generator=g)
    y[:, :, ::7] = x[:, :, ::7]
    mask = {"none": None, "pixel": torch.rand(2, 1, 48, 64, generator=g),
            "full": torch.rand(shape, generator=g)}[mask_kind]
    fast, ref = LOSSES[name]
    x32, y32 = x.clone().requires_grad_(), y.clone().requires_grad_()
    x64, y64 = x.double().requires_grad_(), y.double().requires_grad_()
    got = _run(fast, x32, y32, mask, "none")
    want = _run(ref, x64, y64, None if mask is None else mask.double(), "none")
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)
    if name == "masked_l1":
        assert not got[1][:, :, ::7].any()  # ties: zero gradient
