"""The Triton backend of InstanceNorm + activation against fastgan.reference.

Without a GPU the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set
before the kernels are imported); with one, the compiled kernels run on CUDA tensors.
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
    pytest.skip(f"the Triton backend cannot run: {_ext.TRITON_STATUS[1]}; run "
                "`TRITON_INTERPRET=1 pytest tests/test_triton_norm.py`", allow_module_level=True)
fg.ops.load_triton_ops()   # the fastgan_triton ops are called directly below

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5),
       torch.float16: dict(rtol=2e-3, atol=2e-3), torch.bfloat16: dict(rtol=1.6e-2, atol=2e-2)}


@pytest.fixture(autouse=True)
def triton_backend():
    with fg.backend("triton"), torch.device(DEVICE):
        yield


def layout(t, how):
    if how == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if how == "sliced":
        return torch.cat([t, t], dim=3)[..., ::2]
    return t


def inputs(shape, dtype, how="contiguous", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.5
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    w = torch.randn(shape[1], generator=g, dtype=torch.float64) * 0.5 + 1
    b = torch.randn(shape[1], generator=g, dtype=torch.float64) * 0.5
    x, dy = layout(x.to(DEVICE, dtype), how), layout(dy.to(DEVICE, dtype), how)
    return (x.requires_grad_(), dy, w.to(DEVICE, dtype).requires_grad_(),
            b.to(DEVICE, dtype).requires_grad_())


def check(x, dy, w, b, tol, **kwargs):
    params = [p for p in (w, b) if p is not None]
    got = fg.instance_norm_act(x, w, b, **kwargs)
    want = reference.instance_norm_act(x, w, b, **{**kwargs, "activation": (
        "identity" if kwargs.get("activation") == "identity" else "leaky_relu")})
    assert got.dtype == x.dtype and got.shape == x.shape
    torch.testing.assert_close(got, want, **tol)
    for a, e in zip(torch.autograd.grad(got, (x, *params), dy),
                    torch.autograd.grad(want, (x, *params), dy)):
        torch.testing.assert_close(a, e, **tol)
    return got


@pytest.mark.parametrize("act", [dict(negative_slope=0.2), dict(activation="identity")])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("how", ["contiguous", "channels_last", "sliced"])
def test_matches_reference_float64(how, affine, act):
    x, dy, w, b = inputs((2, 3, 7, 5), torch.float64, how)
    y = check(x, dy, w if affine else None, b if affine else None, TOL[torch.float64], **act)
    if how == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("how", ["contiguous", "channels_last"])
def test_several_tiles_and_channel_blocks(how):
    # 40x40 = 1600 pixels span two NCHW tiles; 40 channels span two NHWC channel blocks.
    x, dy, w, b = inputs((2, 40, 40, 40) if how == "channels_last" else (2, 2, 40, 40),
                         torch.float64, how, seed=1)
    check(x, dy, w, b, TOL[torch.float64], negative_slope=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precisions(dtype):
    x, dy, w, b = inputs((2, 3, 9, 6), dtype, "channels_last", seed=2)
    check(x, dy, w, b, TOL[dtype])


def test_only_parameters_need_gradients():
    x, dy, w, b = inputs((2, 3, 6, 5), torch.float64, seed=3)
    x = x.detach()
    got = torch.autograd.grad(fg.instance_norm_act(x, w, b), (w, b), dy)
    want = torch.autograd.grad(reference.instance_norm_act(x, w, b), (w, b), dy)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, **TOL[torch.float64])


def _opcheck_samples():
    ops = torch.ops.fastgan_triton
    x, dy, w, b = inputs((2, 3, 5, 4), torch.float64)
    xc, dyc, _, _ = inputs((2, 3, 5, 4), torch.float64, "channels_last")
    xd, xcd, wd, bd = x.detach(), xc.detach(), w.detach(), b.detach()
    _, mean, rstd = ops.instance_norm_act_forward(xd, wd, bd, 1e-5, 0.2, 1)
    _, mean_c, rstd_c = ops.instance_norm_act_forward(xcd, None, None, 1e-5, 0.2, 0)
    return [
        (ops.instance_norm_act_forward, (x, w, b, 1e-5, 0.2, 1)),
        (ops.instance_norm_act_forward, (xc, None, None, 1e-5, 0.0, 0)),
        (ops.instance_norm_act_backward, (dy, xd, wd, bd, mean, rstd, 0.2, 1, True)),
        (ops.instance_norm_act_backward, (dyc, xcd, None, None, mean_c, rstd_c, 0.2, 0, False)),
    ]


# Under the interpreter wrap_triton hands back the plain interpreted kernel, which cannot
# be traced with fake tensors, so AOTAutograd (torch.compile) is only checked on a GPU.
OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor") + (
    () if INTERPRETED else ("test_aot_dispatch_dynamic",))


@pytest.mark.parametrize("index", range(4))
def test_opcheck(index):
    op, args = _opcheck_samples()[index]
    torch.library.opcheck(op, args, test_utils=OPCHECK_UTILS)
