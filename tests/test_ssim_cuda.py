"""The CUDA C++ kernels of the SSIM family on a GPU, against fastgan.reference: values and
gradients for every padding, stat, mask kind, layout and dtype; the op contracts,
torch.compile, CUDA-graph capture, the current stream and the peak extra memory. Skipped
without a CUDA device or without fastgan's CUDA kernels (on CPU machines the kernels'
index arithmetic is checked by tests/test_ssim_cuda_emulation.py instead)."""

import pytest
import torch

import fastgan as fg
from fastgan import reference as R

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not fg.build_info()["cuda_kernels"],
                       reason="needs a CUDA device and fastgan built with its CUDA kernels"),
]

PADDINGS = ("valid", "same", "reflect")
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-12), torch.float32: dict(rtol=1e-4, atol=1e-5),
       torch.float16: dict(rtol=1e-2, atol=1e-3), torch.bfloat16: dict(rtol=3e-2, atol=1e-2)}


@pytest.fixture(autouse=True)
def cuda_backend():
    with fg.backend("cuda"):
        yield


def pair(shape=(2, 3, 70, 45), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    y = (x + 0.3 * torch.rand(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to("cuda", dtype), y.to("cuda", dtype)


def run(fn, x, y):
    x, y = x.detach().requires_grad_(), y.detach().requires_grad_()
    out = fn(x, y)
    g = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
    return (out.detach(), *torch.autograd.grad(out, (x, y), grad_outputs=g))


def check(fn, ref, x, y, tol):
    got = run(fn, x, y)
    want = run(lambda a, b: ref(a.double(), b.double()), x, y)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b.double(), **tol)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("window_size", [3, 11, 15])
@pytest.mark.parametrize("mask_kind", [None, "pixel", "full"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_matches_reference(padding, window_size, mask_kind, dtype):
    x, y = pair(dtype=dtype)
    n, c, h, w = x.shape
    mask = None if mask_kind is None else torch.rand(
        n, 1 if mask_kind == "pixel" else c, h, w, device="cuda", dtype=dtype)
    opts = dict(padding=padding, window_size=window_size, mask=mask, reduction="none")
    check(lambda a, b: fg.ssim(a, b, **opts), lambda a, b: R.ssim(a, b, **opts), x, y, TOL[dtype])


@pytest.mark.parametrize("padding", PADDINGS)
def test_map_mix_and_ms_ssim(padding):
    x, y = pair((2, 3, 170, 181))
    check(lambda a, b: fg.ssim_map(a, b, padding=padding),
          lambda a, b: R.ssim_map(a, b, padding=padding), x, y, TOL[torch.float32])
    check(lambda a, b: fg.ssim_l1_loss(a, b, padding=padding, alpha=0.6),
          lambda a, b: R.ssim_l1_loss(a, b, padding=padding, alpha=0.6), x, y, TOL[torch.float32])
    check(lambda a, b: fg.ms_ssim(a, b, padding=padding, reduction="none"),
          lambda a, b: R.ms_ssim(a, b, padding=padding, reduction="none"), x, y, TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype):
    x, y = pair(dtype=dtype)
    got = run(lambda a, b: fg.ssim(a, b), x, y)
    assert got[0].dtype == dtype and got[1].dtype == dtype
    check(lambda a, b: fg.ssim(a, b), lambda a, b: R.ssim(a, b), x, y, TOL[dtype])


@pytest.mark.parametrize("layout", ["channels_last", "sliced"])
def test_layouts_match_contiguous(layout):
    x, y = pair()
    if layout == "channels_last":
        xs, ys = (t.contiguous(memory_format=torch.channels_last) for t in (x, y))
    else:
        xs, ys = (torch.stack([t, 2 * t], dim=-1).flatten(-2)[..., ::2] for t in (x, y))
    fn = lambda a, b: fg.ssim_l1_loss(a, b, padding="reflect")  # noqa: E731
    for a, b in zip(run(fn, xs, ys), run(fn, x, y)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_large_image_and_batch():
    x, y = pair((1, 3, 1080, 1920))
    check(lambda a, b: fg.ssim(a, b), lambda a, b: R.ssim(a, b), x, y, TOL[torch.float32])


def test_deterministic():
    x, y = pair((4, 3, 256, 256))
    a, b = run(lambda p, q: fg.ssim(p, q), x, y), run(lambda p, q: fg.ssim(p, q), x, y)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_opcheck_and_compile():
    x, y = pair((2, 3, 40, 40))
    F = torch.ops.fastgan
    args = (7, 1.5, 0.01, 0.03, 1.0, 2, 2, 0.84)
    torch.library.opcheck(F.ssim_forward, (x.requires_grad_(), y, None, *args))
    sums, _ = F.ssim_forward(x.detach(), y, None, *args)
    torch.library.opcheck(F.ssim_backward, (torch.rand_like(sums), x.detach(), y, None, *args, True, True))
    torch.library.opcheck(F.ssim_map_forward, (x.detach().requires_grad_(), y, *args))
    torch._dynamo.reset()
    fn = lambda a, b: fg.ssim_loss(a, b, padding="same") * 2  # noqa: E731
    for u, v in zip(run(torch.compile(fn, fullgraph=True), x, y), run(fn, x, y)):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def test_current_stream_and_cuda_graph():
    x, y = pair((2, 3, 64, 64))
    xg = x.detach().requires_grad_()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm-up on the side stream, as graph capture requires
            xg.grad = None
            fg.ssim_loss(xg, y).backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    xg.grad = None
    with torch.cuda.graph(graph):
        loss = fg.ssim_loss(xg, y)
        loss.backward()
    graph.replay()
    torch.cuda.synchronize()
    want = run(lambda a, b: 1 - R.ssim(a.double(), b.double()), x, y)
    torch.testing.assert_close(loss.double(), want[0].double(), **TOL[torch.float32])
    torch.testing.assert_close(xg.grad.double(), want[1].double(), **TOL[torch.float32])


def test_peak_extra_memory_at_most_three_inputs():
    x, y = pair((8, 3, 256, 256))
    x.requires_grad_()
    fg.ssim_loss(x, y).backward()  # warm-up
    x.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fg.ssim_loss(x, y).backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    assert extra <= 3 * x.numel() * x.element_size(), extra / (x.numel() * x.element_size())
