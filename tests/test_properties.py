"""Property-based bad input for every public op and module: random shapes (empty and zero-size
dimensions included), dtypes, layouts and strides, NaN/Inf, masks of the wrong shape, dtype or
range, and bad options. Each call either equals the same call on the reference backend
(``fastgan/reference.py``), or raises ValueError/TypeError whose message starts with the
function's name and names an argument; never a kernel's RuntimeError, a crash or a wrong value.

Small shapes and a modest example count keep it to seconds on a 2-core CI machine."""

import math
import re

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastgan as fg  # noqa: E402
from fastgan import losses  # noqa: E402
from fastgan.nn import InstanceNormAct  # noqa: E402

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FLOATS = [torch.float32, torch.float32, torch.float64, torch.float16, torch.bfloat16]
OTHER_DTYPES = [torch.int64, torch.uint8, torch.bool, torch.complex64]
ARGUMENTS = ("x", "y", "mask", "refined", "synthetic", "weight", "bias", "reduction", "dim", "eps", "padding",
             "data_range", "window_size", "images", "alpha", "weights", "activation", "negative_slope")
TOL = {torch.float64: (1e-7, 1e-9), torch.float32: (1e-4, 1e-5), torch.float16: (1e-2, 2e-3),
       torch.bfloat16: (5e-2, 2e-2)}


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    if t.dim() != 4:
        return t
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":      # every other column of a wider tensor: strided, not dense
        wide = torch.zeros(*t.shape[:3], 2 * t.shape[3] + 1, dtype=t.dtype)
        wide[..., 1::2] = t
        return wide[..., 1::2]
    if layout == "expanded":    # a batch of one image broadcast: stride 0 on N
        return t[:1].expand(t.shape) if t.shape[0] > 0 else t
    return t.contiguous()


BREAKS = ["ndim", "empty batch", "no channels", "zero side", "dtype", "y shape", "y dtype", "nan", "inf",
          "mask shape", "mask uint8", "mask range", "mask nan"]


@st.composite
def images(draw, min_side: int = 1):
    """(x, y, mask): valid for about 40 % of the draws, else with one thing wrong (a 3-D or
    5-D tensor, an empty batch, a zero-size side, an integer dtype, y of another shape or
    dtype, NaN/Inf, a mask of the wrong shape, dtype or range); any layout, any float dtype."""
    broken = draw(st.sampled_from([None] * 9 + BREAKS))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(min_side, min_side + 10)), draw(st.integers(min_side, min_side + 10))
    n = 0 if broken == "empty batch" else n
    c = 0 if broken == "no channels" else c
    h = 0 if broken == "zero side" else h
    shape = {"ndim": draw(st.sampled_from([(c, h, w), (n, c, h, w, 2)]))}.get(broken, (n, c, h, w))
    dtype = draw(st.sampled_from(FLOATS)) if broken != "dtype" else draw(st.sampled_from(OTHER_DTYPES))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))

    def tensor(shape, dtype):
        t = torch.rand(shape, generator=g, dtype=torch.float64)
        return (t * 255).to(dtype) if not dtype.is_floating_point else t.to(dtype)

    x = tensor(shape, dtype)
    y = tensor(tuple(s + 1 for s in shape) if broken == "y shape" else shape,
               (torch.float64 if dtype != torch.float64 else torch.float32) if broken == "y dtype" else dtype)
    if broken in ("nan", "inf") and x.numel():
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = math.nan if broken == "nan" else -math.inf
    layout = draw(st.sampled_from(["contiguous", "channels_last", "sliced", "expanded"]))
    x, y = _layout(x, layout), _layout(y, layout)
    mask = None
    if (broken or "").startswith("mask") or draw(st.booleans()):
        mshape = draw(st.sampled_from([(n, 1, h, w), (n, c, h, w)])) if len(shape) == 4 else (n, 1, h, w)
        if broken == "mask shape":
            mshape = draw(st.sampled_from([(n, 2, h + 1, w), (n + 1, 1, h, w), (1, h, w)]))
        mask = torch.rand(mshape, generator=g)
        mask = draw(st.sampled_from([mask.to(dtype), (mask > 0.5), (mask > 0.5).to(dtype)]))
        if broken == "mask uint8":
            mask = (mask > 0.5).to(torch.uint8) * 255
        elif broken == "mask range":
            mask = mask.float() * 3 - 1
        elif broken == "mask nan" and mask.numel():
            mask = mask.float()
            mask.view(-1)[0] = math.nan
    return x, y, mask


REDUCTIONS = st.sampled_from(["mean", "sum", "none", "avg"])
PADDINGS = st.sampled_from(["valid", "same", "reflect", "zeros"])


def outcome(fn):
    """('ok', tensor) or ('error', exception) of ``fn()``."""
    try:
        return "ok", fn()
    except Exception as e:  # noqa: BLE001 - classified by the caller
        return "error", e


def check(name: str, call, inputs) -> None:
    """``call(*inputs)`` on the default backend against the reference backend."""
    got_kind, got = outcome(lambda: call(*inputs))
    with fg.backend("reference"):
        ref_kind, ref = outcome(lambda: call(*inputs))
    if got_kind == "error":
        assert isinstance(got, (ValueError, TypeError)), f"{name}: {type(got).__name__}: {got}"
        msg = str(got)
        assert msg.startswith(f"{name}:"), f"the message does not name the function: {msg!r}"
        assert any(re.search(rf"\b{a}\b", msg) for a in ARGUMENTS) or "result" in msg or "images of" in msg, \
            f"the message names no argument: {msg!r}"
        assert ref_kind == "error" and type(ref) is type(got), f"{name}: the reference gave {ref_kind} {ref!r}"
        return
    assert ref_kind == "ok", f"{name}: the kernels returned a value where the reference raised {ref!r}"
    rtol, atol = TOL[got.dtype] if got.dtype in TOL else (0, 0)
    torch.testing.assert_close(got, ref, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{name}: {m}")


@SETTINGS
@given(images(), REDUCTIONS, st.sampled_from(["masked_l1", "masked_mse", "masked_charbonnier"]))
def test_masked_losses(data, reduction, name):
    x, y, mask = data
    check(name, lambda a, b, m: getattr(fg, name)(a, b, m, reduction=reduction), (x, y, mask))


@SETTINGS
@given(images(), REDUCTIONS, st.sampled_from([None, 1, 2]))
def test_cosine_similarity_loss(data, reduction, dim):
    x, y, mask = data
    check("cosine_similarity_loss",
          lambda a, b, m: fg.cosine_similarity_loss(a, b, m, reduction=reduction, dim=dim), (x, y, mask))


@SETTINGS
@given(images())
def test_self_regularization_loss(data):
    x, y, _ = data
    check("self_regularization_loss", fg.self_regularization_loss, (x, y))


@SETTINGS
@given(images(min_side=5), REDUCTIONS, PADDINGS, st.sampled_from([3, 5, 7, 11, 4]))
def test_ssim_and_its_map(data, reduction, padding, window):
    x, y, mask = data
    check("ssim", lambda a, b, m: fg.ssim(a, b, mask=m, reduction=reduction, padding=padding, window_size=window),
          (x, y, mask))
    check("ssim_map", lambda a, b: fg.ssim_map(a, b, padding=padding, window_size=window), (x, y))


@SETTINGS
@given(images(min_side=5), REDUCTIONS, st.sampled_from([1.0, 255.0, 0.0, -1.0]))
def test_psnr_and_ssim_l1(data, reduction, data_range):
    x, y, mask = data
    check("psnr", lambda a, b, m: fg.psnr(a, b, mask=m, reduction=reduction, data_range=data_range), (x, y, mask))
    check("ssim_l1_loss", lambda a, b, m: fg.ssim_l1_loss(a, b, mask=m, data_range=data_range, window_size=5),
          (x, y, mask))


@SETTINGS
@given(images(min_side=14), st.sampled_from([3, 5]), st.sampled_from([None, (0.5, 0.5), (1.0, -1.0)]))
def test_ms_ssim(data, window, weights):
    x, y, _ = data
    check("ms_ssim", lambda a, b: fg.ms_ssim(a, b, window_size=window, weights=weights), (x, y))


@SETTINGS
@given(images(), st.sampled_from(["none", "c", "wrong", "int"]), st.sampled_from([1e-5, 0.0, -1.0]),
       st.sampled_from(["leaky_relu", "relu", "identity", "gelu"]))
def test_instance_norm_act(data, params, eps, activation):
    x, _, _ = data
    c = x.shape[1] if x.dim() >= 2 else 1
    weight = bias = None
    if params != "none":
        size = c if params != "wrong" else c + 1
        weight = torch.rand(size).to(torch.float32 if params != "int" else torch.int64)
        bias = torch.rand(size)
    check("instance_norm_act",
          lambda a, wt, b: fg.instance_norm_act(a, wt, b, eps=eps, activation=activation), (x, weight, bias))


@SETTINGS
@given(images(min_side=5), st.sampled_from(["mean", "sum", "none"]))
def test_modules(data, reduction):
    """The nn.Module faces: the same checks, the same values."""
    x, y, mask = data
    check("masked_l1", losses.MaskedL1Loss(reduction=reduction), (x, y, mask))
    check("masked_mse", losses.MaskedMSELoss(reduction=reduction), (x, y, mask))
    check("cosine_similarity_loss", losses.CosineSimilarityLoss(reduction=reduction), (x, y, mask))
    check("self_regularization_loss", losses.SelfRegularizationLoss(), (x, y))
    check("ssim_loss", losses.SSIMLoss(window_size=5), (x, y, mask))
    if x.dim() == 4 and x.shape[1] > 0:
        check("instance_norm_act", InstanceNormAct(x.shape[1], affine=True), (x,))

