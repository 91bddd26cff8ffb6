"""The Triton backend of the SSIM family against fastgan.reference.

Without a GPU the kernels run under the Triton interpreter (TRITON_INTERPRET=1, set
before triton is imported; tests/conftest.py does it too), which is slow: tiny images
and small windows here, every padding, stat, mask kind and layout at least once. With a
GPU the compiled kernels run on CUDA tensors.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

pytest.importorskip("triton", reason="triton is not installed: no Triton backend to test")

import fastgan as fg  # noqa: E402
from fastgan import _ext, reference as R  # noqa: E402

if not _ext.TRITON_STATUS[0]:
    pytest.skip(f"the Triton backend cannot run: {_ext.TRITON_STATUS[1]}; run with "
                "TRITON_INTERPRET=1 set before fastgan is imported", allow_module_level=True)
fg.ops.load_triton_ops()   # the fastgan_triton ops are called directly below

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
SHAPE = (2, 2, 11, 13)
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-12), torch.float32: dict(rtol=1e-4, atol=1e-5),
       torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


@pytest.fixture(autouse=True)
def triton_backend():
    with fg.backend("triton"), torch.device(DEVICE):
        yield


def pair(shape=SHAPE, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.4 * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(DEVICE, dtype), y.to(DEVICE, dtype)


def run(fn, x, y):
    x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
    out = fn(x, y)
    g = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    return (out.detach(), *torch.autograd.grad(out, (x, y), grad_outputs=g))


def check(fn, ref, x, y, dtype=torch.float64):
    got = run(fn, x, y)
    with fg.backend("reference"):
        want = run(ref, x, y)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b.double(), **TOL[dtype])


@pytest.mark.parametrize("padding", ["valid", "same", "reflect"])
def test_ssim_masked_float64(padding):
    x, y = pair()
    mask = torch.rand(SHAPE[0], 1, *SHAPE[2:], dtype=torch.float64)
    opts = dict(padding=padding, window_size=3, mask=mask, reduction="none")
    check(lambda a, b: fg.ssim(a, b, **opts), lambda a, b: R.ssim(a, b, **opts), x, y)


def test_ssim_l1_full_mask_window_5_float32():
    x, y = pair(dtype=torch.float32)
    mask = torch.rand(*SHAPE, dtype=torch.float32)
    opts = dict(padding="reflect", window_size=5, mask=mask, alpha=0.7, data_range=2.0)
    check(lambda a, b: fg.ssim_l1_loss(a, b, **opts), lambda a, b: R.ssim_l1_loss(a, b, **opts),
          x, y, torch.float32)


def test_ssim_map_and_ms_ssim():
    x, y = pair()
    opts = dict(padding="same", window_size=3, sigma=1.0)
    check(lambda a, b: fg.ssim_map(a, b, **opts), lambda a, b: R.ssim_map(a, b, **opts), x, y)
    check(lambda a, b: fg.ms_ssim(a, b, window_size=3, weights=[0.5, 0.5]),
          lambda a, b: R.ms_ssim(a, b, window_size=3, weights=[0.5, 0.5]), x, y)


@pytest.mark.parametrize("layout", ["channels_last", "sliced"])
def test_layouts(layout):
    x, y = pair(dtype=torch.float32)
    if layout == "channels_last":
        xs, ys = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    else:
        xs, ys = (torch.stack([t, 2 * t], dim=-1).flatten(-2)[..., ::2] for t in (x, y))
    fn = lambda a, b: fg.ssim(a, b, window_size=3, padding="reflect")  # noqa: E731
    got, want = run(fn, xs, ys), run(fn, x, y)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if layout == "channels_last":
        assert got[1].is_contiguous(memory_format=torch.channels_last)


def test_bfloat16_accumulates_in_float32():
    x, y = pair(dtype=torch.float32)
    xb, yb = x.bfloat16(), y.bfloat16()
    got = run(lambda a, b: fg.ssim(a, b, window_size=3), xb, yb)
    want = run(lambda a, b: R.ssim(a.double(), b.double(), window_size=3), xb, yb)
    assert got[0].dtype == torch.bfloat16
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b.double(), **TOL[torch.bfloat16])


def test_matches_cpu_kernels():
    if not fg.build_info()["cpu_kernels"] or DEVICE != "cpu":
        pytest.skip("compares with the C++ CPU kernels")
    x, y = pair(dtype=torch.float32)
    fn = lambda a, b: fg.ssim(a, b, window_size=5) * 2  # noqa: E731
    got = run(fn, x, y)
    with fg.backend("cpu"):
        want = run(fn, x, y)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


# Under the interpreter wrap_triton hands back the plain interpreted kernel, which cannot
# be traced with fake tensors, so AOTAutograd (torch.compile) is only checked on a GPU.
@pytest.mark.skipif(INTERPRETED, reason="torch.compile of Triton kernels needs a GPU")
def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    x, y = pair(dtype=torch.float32)
    fn = lambda a, b: fg.ssim_loss(a, b, window_size=5, padding="reflect") * 2  # noqa: E731
    got = run(torch.compile(fn, fullgraph=True), x, y)
    want = run(fn, x, y)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


OPCHECK_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor") + (
    () if INTERPRETED else ("test_aot_dispatch_dynamic",))


def test_opcheck():
    x, y = pair(dtype=torch.float32)
    T = torch.ops.fastgan_triton
    args = (3, 1.5, 0.01, 0.03, 1.0, 2, 0, 0.0)
    torch.library.opcheck(T.ssim_forward, (x.requires_grad_(), y, None, *args),
                          test_utils=OPCHECK_UTILS)
    sums, _ = T.ssim_forward(x.detach(), y, None, *args)
    torch.library.opcheck(T.ssim_backward, (torch.ones_like(sums), x.detach(), y, None, *args, True,
                                            False), test_utils=OPCHECK_UTILS)
    torch.library.opcheck(T.ssim_map_forward, (x.detach(), y.requires_grad_(), *args),
                          test_utils=OPCHECK_UTILS)


# Volumes (N, C, D, H, W): the same kernels with the depth loop; tiny, as the interpreter
# runs win^3 taps per voxel.
VOLUME = (1, 2, 5, 6, 7)


@pytest.mark.parametrize("padding", ["valid", "reflect"])
def test_volume_ssim_masked_and_mix_float64(padding):
    x, y = pair(VOLUME)
    mask = torch.rand(1, 1, *VOLUME[2:], dtype=torch.float64).to(DEVICE)
    opts = dict(padding=padding, window_size=3, mask=mask)
    check(lambda a, b: fg.ssim(a, b, reduction="none", **opts),
          lambda a, b: R.ssim(a, b, reduction="none", **opts), x, y)
    check(lambda a, b: fg.ssim_l1_loss(a, b, **opts), lambda a, b: R.ssim_l1_loss(a, b, **opts),
          x, y)


def test_volume_map_zero_padding_and_opcheck():
    x, y = pair(VOLUME)
    opts = dict(padding="same", window_size=3)
    check(lambda a, b: fg.ssim_map(a, b, **opts), lambda a, b: R.ssim_map(a, b, **opts), x, y)
    T = torch.ops.fastgan_triton
    args = (3, 1.5, 0.01, 0.03, 1.0, 1, 1, 0.0)
    xf, yf = x.float(), y.float()
    torch.library.opcheck(T.ssim_forward, (xf.requires_grad_(), yf, None, *args),
                          test_utils=OPCHECK_UTILS)
    torch.library.opcheck(T.ssim_map_forward, (xf.detach(), yf.requires_grad_(), *args),
                          test_utils=OPCHECK_UTILS)
