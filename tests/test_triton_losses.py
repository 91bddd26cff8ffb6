"""The Triton backend of the masked and cosine losses against fastgan.reference.

Without a GPU the kernels run under the Triton interpreter, which must be switched on
before the kernels are imported (importing torch does not import triton); with one,
the compiled kernels run on CUDA tensors.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: no Triton backend to test")

import fastgan as fg  # noqa: E402
from fastgan import _ext, reference  # noqa: E402

if not _ext.TRITON_STATUS[0]:
    pytest.skip(f"the Triton backend cannot run: {_ext.TRITON_STATUS[1]}. fastgan was imported "
                "(by tests/conftest.py?) before this file could set TRITON_INTERPRET=1: run "
                "`TRITON_INTERPRET=1 pytest tests/test_triton_losses.py`, or set the variable at "
                "the top of tests/conftest.py", allow_module_level=True)
fg.ops.load_triton_ops()   # the fastgan_triton ops are called directly below

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
SHAPE = (2, 3, 8, 12)
REDUCTIONS = ("mean", "sum", "none")
# name -> (fastgan function, reference function, extra keyword arguments)
LOSSES = {
    "l1": (fg.masked_l1, reference.masked_l1, {}),
    "mse": (fg.masked_mse, reference.masked_mse, {}),
    "charbonnier": (fg.masked_charbonnier, reference.masked_charbonnier, {"eps": 0.05}),
    "cosine": (fg.cosine_similarity_loss, reference.cosine_similarity_loss, {"dim": None}),
    "cosine_pixel": (fg.cosine_similarity_loss, reference.cosine_similarity_loss, {"dim": 1}),
}
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-6),
       torch.float16: dict(rtol=2e-3, atol=2e-4), torch.bfloat16: dict(rtol=1.6e-2, atol=2e-3)}


@pytest.fixture(autouse=True)
def triton_backend():
    # Tensors are made on DEVICE; the backend goes back to what it was afterwards.
    with fg.backend("triton"), torch.device(DEVICE):
        yield


def make_mask(kind, dtype, shape=SHAPE, zero=False):
    if kind is None:
        return None
    n, c, h, w = shape
    m = torch.rand(n, 1 if kind == "pixel" else c, h, w, dtype=dtype)
    return torch.zeros_like(m) if zero else m


def layout(t, how):
    if t is None or how == "contiguous":
        return t
    if how == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    return torch.cat([t, t], dim=3)[..., ::2]  # sliced: a strided view, neither layout


def run(fn, x, y, mask, reduction, kwargs):
    """Loss and gradients for x and y; a non-uniform upstream gradient for "none"."""
    x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
    loss = fn(x, y, mask, reduction=reduction, **kwargs)
    g = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
    gx, gy = torch.autograd.grad(loss, (x, y), grad_outputs=g)
    return loss, gx, gy


def check_against_reference(name, x, y, mask, reduction, tol):
    fn, ref, kwargs = LOSSES[name]
    got = run(fn, x, y, mask, reduction, kwargs)
    want = run(ref, x, y, mask, reduction, kwargs)
    for label, a, b in zip(("loss", "grad_x", "grad_y"), got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, label
        torch.testing.assert_close(a, b, **tol, msg=label)
    return got


@pytest.mark.parametrize("mask", [None, "pixel", "full"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", LOSSES)
def test_matches_reference(name, reduction, mask):
    torch.manual_seed(0)
    x, y = torch.randn(SHAPE, dtype=torch.float64), torch.randn(SHAPE, dtype=torch.float64)
    check_against_reference(name, x, y, make_mask(mask, torch.float64), reduction,
                            TOL[torch.float64])


@pytest.mark.parametrize("how", ["channels_last", "sliced"])
@pytest.mark.parametrize("mask", [None, "pixel", "full"])
@pytest.mark.parametrize("name", LOSSES)
def test_layouts_float32(name, mask, how):
    torch.manual_seed(1)
    x, y = torch.randn(SHAPE), torch.randn(SHAPE)
    m = layout(make_mask(mask, torch.float32), how)
    reduction = "none" if how == "sliced" else "mean"
    _, gx, gy = check_against_reference(name, layout(x, how), layout(y, how), m, reduction,
                                        TOL[torch.float32])
    if how == "channels_last":  # gradients keep the input's layout, as on the CPU
        assert gx.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", LOSSES)
def test_several_programs_per_image(name):
    # 4800 elements / 1600 pixels per image span several kernel programs.
    torch.manual_seed(6)
    shape = (2, 3, 40, 40)
    x, y = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    mask = make_mask("pixel", torch.float64, shape)
    for reduction in ("mean", "none"):
        check_against_reference(name, layout(x, "channels_last"), layout(y, "channels_last"),
                                mask, reduction, TOL[torch.float64])


def test_large_batch_mean():
    # 130 images exceed the 128-wide loop that sums the batch's weights in the backward.
    torch.manual_seed(7)
    shape = (130, 1, 2, 3)
    x, y = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    check_against_reference("mse", x, y, make_mask("full", torch.float64, shape), "mean",
                            TOL[torch.float64])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", LOSSES)
def test_all_zero_mask(name, reduction):
    torch.manual_seed(2)
    x, y = torch.randn(SHAPE), torch.randn(SHAPE)
    mask = make_mask("pixel", torch.float32, zero=True)
    loss, gx, gy = check_against_reference(name, x, y, mask, reduction, TOL[torch.float32])
    if not name.startswith("cosine"):  # cosine of two zero vectors is 0, so its loss is 1
        assert torch.all(loss == 0)
    assert torch.all(gx == 0) and torch.all(gy == 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", LOSSES)
def test_half_precision(name, dtype):
    torch.manual_seed(3)
    x, y = torch.rand(SHAPE, dtype=dtype), torch.rand(SHAPE, dtype=dtype)
    check_against_reference(name, x, y, make_mask("pixel", dtype), "mean", TOL[dtype])


@pytest.mark.parametrize("name", ["l1", "cosine", "cosine_pixel"])
def test_one_input_needs_grad_and_expanded_upstream_grad(name):
    fn, ref, kwargs = LOSSES[name]
    torch.manual_seed(4)
    x, y = torch.randn(SHAPE), torch.randn(SHAPE, requires_grad=True)
    mask = make_mask("full", torch.float32)
    # loss.sum() hands the op an expanded (stride 0) upstream gradient.
    (got,) = torch.autograd.grad(fn(x, y, mask, reduction="none", **kwargs).sum(), y)
    (want,) = torch.autograd.grad(ref(x, y, mask, reduction="none", **kwargs).sum(), y)
    torch.testing.assert_close(got, want, **TOL[torch.float32])


def channels_last(t):
    return t.detach().contiguous(memory_format=torch.channels_last).requires_grad_(t.requires_grad)


def _opcheck_samples():
    torch.manual_seed(5)
    x = torch.randn(SHAPE, dtype=torch.float64, requires_grad=True)
    y = torch.randn(SHAPE, dtype=torch.float64, requires_grad=True)
    pixel, full = make_mask("pixel", torch.float64), make_mask("full", torch.float64)
    ws = torch.rand(SHAPE[0], dtype=torch.float64) + 1
    stats = torch.rand(SHAPE[0], 3, dtype=torch.float64) + 0.5
    g0, gn = torch.tensor(0.7, dtype=torch.float64), torch.rand(SHAPE[0], dtype=torch.float64)
    xd, yd = x.detach(), y.detach()
    xc, yc, xdc, ydc = channels_last(x), channels_last(y), channels_last(xd), channels_last(yd)
    no_stats = torch.empty(0, dtype=torch.float64)
    ops = torch.ops.fastgan_triton
    return [
        (ops.masked_loss_forward, (x, y, None, 0, 1e-3, 1)),
        (ops.masked_loss_forward, (xc, yc, pixel, 2, 1e-3, 0)),
        (ops.masked_loss_backward, (gn, xd, yd, full, ws, 1, 1e-3, 0)),
        (ops.masked_loss_backward, (g0, xdc, ydc, pixel, ws, 2, 1e-3, 1)),
        (ops.cosine_loss_forward, (x, y, pixel, 0, 1e-8, 2)),
        (ops.cosine_loss_forward, (xc, yc, full, 1, 1e-8, 0)),
        (ops.cosine_loss_backward, (gn, xd, yd, pixel, stats, 0, 1e-8, 0, True, False)),
        (ops.cosine_loss_backward, (g0, xdc, ydc, None, no_stats, 1, 1e-8, 1, False, True)),
    ]


# Under the interpreter wrap_triton hands back the plain interpreted kernel, which cannot
# be traced with fake tensors, so AOTAutograd (torch.compile) is only checked on a GPU.
OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor") + (
    () if INTERPRETED else ("test_aot_dispatch_dynamic",))


@pytest.mark.parametrize("index", range(8))
def test_opcheck(index):
    op, args = _opcheck_samples()[index]
    torch.library.opcheck(op, args, test_utils=OPCHECK_UTILS)
