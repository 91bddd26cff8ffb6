"""Fused InstanceNorm + activation (C++ CPU kernels) against nn.InstanceNorm2d + nn.LeakyReLU
and fastgan.reference: values and gradients (input, weight, bias) for every dtype, both
memory layouts, odd and multi-chunk sizes; the op contracts (gradcheck, opcheck, compile);
the modules; bad input."""

import warnings

import pytest
import torch
from torch import nn

import fastgan as fg
from fastgan import reference as R
from fastgan.nn import ConvNormAct, InstanceNormAct

from conftest import TOL, make_layout, needs_cpu_kernels

pytestmark = needs_cpu_kernels

ODD = (3, 5, 19, 23)  # no chunk or vector width divides these
ACTS = {"leaky": ("leaky_relu", 0.2), "relu": ("relu", 0.0), "identity": ("identity", 0.0)}


def _eager(c, affine, act, slope, weight=None, bias=None, dtype=torch.float32):
    norm = nn.InstanceNorm2d(c, affine=affine).to(dtype)
    if affine:
        with torch.no_grad():
            norm.weight.copy_(weight)
            norm.bias.copy_(bias)
    tail = {"leaky_relu": nn.LeakyReLU(slope), "relu": nn.ReLU(), "identity": nn.Identity()}[act]
    return nn.Sequential(norm, tail), norm


def _data(shape, dtype=torch.float32, layout="contiguous", seed=0, scale=2.0, offset=0.5):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(shape, generator=g, dtype=torch.float64) * scale + offset
    dy = torch.randn(shape, generator=g, dtype=torch.float64)
    w = torch.randn(c, generator=g, dtype=torch.float64) * 0.5 + 1
    b = torch.randn(c, generator=g, dtype=torch.float64) * 0.5
    x = make_layout(x.to(dtype), layout).requires_grad_()
    dy = make_layout(dy.to(dtype), layout)
    return x, dy, w.to(dtype).requires_grad_(), b.to(dtype).requires_grad_()


def _grads(y, dy, inputs):
    return torch.autograd.grad(y, inputs, dy)


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_torch_instance_norm_and_leaky_relu(dtype, layout, affine, act):
    name, slope = ACTS[act]
    x, dy, w, b = _data(ODD, dtype, layout)
    eager, norm = _eager(ODD[1], affine, name, slope, w.detach(), b.detach(), dtype)
    want = eager(x)
    got = fg.instance_norm_act(x, w if affine else None, b if affine else None,
                               negative_slope=slope, activation=name)
    assert got.dtype == dtype and got.shape == x.shape
    torch.testing.assert_close(got, want, **TOL[dtype])
    params_want = (norm.weight, norm.bias) if affine else ()
    params_got = (w, b) if affine else ()
    for a, e in zip(_grads(got, dy, (x, *params_got)), _grads(want, dy, (x, *params_want))):
        torch.testing.assert_close(a, e, **TOL[dtype])


@pytest.mark.parametrize("shape", [ODD, (1, 2, 70, 70)], ids=["odd", "chunked"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_reference(dtype, layout, shape):
    """Half-precision chunks are converted to float32 scratch and back (cpu/reduced_float.h)."""
    x, dy, w, b = _data(shape, dtype, layout)
    got = fg.instance_norm_act(x, w, b)
    want = R.instance_norm_act(x, w, b)
    assert got.dtype == dtype
    torch.testing.assert_close(got, want, **TOL[dtype])
    for a, e in zip(_grads(got, dy, (x, w, b)), _grads(want, dy, (x, w, b))):
        assert a.dtype == dtype
        # weight and bias gradients are sums over N*H*W products: compare relative to size
        torch.testing.assert_close(a, e, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * 40)


def test_half_input_with_float32_parameters():
    x, dy, w, b = _data(ODD, torch.bfloat16)
    w32, b32 = w.detach().float().requires_grad_(), b.detach().float().requires_grad_()
    got = fg.instance_norm_act(x, w32, b32)
    want = R.instance_norm_act(x, w32, b32)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got, want, **TOL[torch.bfloat16])
    gx, gw, gb = _grads(got, dy, (x, w32, b32))
    assert gx.dtype == torch.bfloat16 and gw.dtype == gb.dtype == torch.float32


@pytest.mark.parametrize("shape", [(2, 3, 70, 70), (1, 2, 100, 100), (2, 5, 40, 40), (1, 1, 1, 2),
                                   (4, 300, 6, 5), (1, 3, 1, 9000)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_chunked_and_tiny_planes(shape, layout):
    """Planes of several statistics chunks, the parallel-chunk path (fewer planes or images
    than threads), many channels per NHWC chunk, and a two-pixel plane."""
    x, dy, w, b = _data(shape, torch.float64, layout, seed=1)
    got = fg.instance_norm_act(x, w, b, negative_slope=0.1)
    want = R.instance_norm_act(x, w, b, negative_slope=0.1)
    torch.testing.assert_close(got, want, **TOL[torch.float64])
    for a, e in zip(_grads(got, dy, (x, w, b)), _grads(want, dy, (x, w, b))):
        torch.testing.assert_close(a, e, **TOL[torch.float64])
    if layout == "channels_last":
        assert got.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_large_mean_keeps_float32_precision(layout):
    """Values far from zero (mean 1000, std 0.01): a one-pass sum of squares in float32
    would lose the variance entirely. The statistics must match float64; the output can
    only be as good as x - mean in float32 allows, which eager PyTorch shares."""
    x, _, w, b = _data((2, 4, 67, 61), torch.float32, layout, seed=2, scale=0.01, offset=1000.0)
    x = x.detach()
    _, mean, rstd = torch.ops.fastgan.instance_norm_act_forward(x, w.detach(), b.detach(), 1e-5, 0.2, 1)
    xd = x.double()
    want_mean = xd.mean(dim=(2, 3))
    want_rstd = torch.rsqrt(xd.var(dim=(2, 3), unbiased=False) + 1e-5)
    torch.testing.assert_close(mean.double(), want_mean, rtol=1e-7, atol=0)
    torch.testing.assert_close(rstd.double(), want_rstd, rtol=1e-6, atol=0)
    want = R.instance_norm_act(xd, w.double(), b.double())
    eager = nn.functional.leaky_relu(nn.functional.instance_norm(x, weight=w, bias=b), 0.2)
    ours_err = (fg.instance_norm_act(x, w, b).double() - want).abs().max()
    eager_err = (eager.double() - want).abs().max()
    assert ours_err <= 1.5 * eager_err + 1e-4, (ours_err, eager_err)


def test_channels_last_stays_channels_last_and_gradient_too():
    x, dy, w, b = _data((2, 8, 9, 7), layout="channels_last")
    y = fg.instance_norm_act(x, w, b)
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.backward(dy)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_results_do_not_depend_on_thread_count():
    """With one thread whole planes run on one thread; with several, planes of one image are
    split into chunks: the same sums in the same order either way."""
    shapes = [((1, 2, 90, 90), "contiguous"), ((3, 8, 40, 40), "channels_last"),
              ((8, 8, 90, 90), "contiguous")]
    threads = torch.get_num_threads()
    for shape, layout in shapes:
        x, dy, w, b = _data(shape, layout=layout, seed=3)
        outs = []
        try:
            for n in (1, max(4, threads)):
                torch.set_num_threads(n)
                y = fg.instance_norm_act(x, w, b)
                outs.append((y, *_grads(y, dy, (x, w, b))))
        finally:
            torch.set_num_threads(threads)
        assert all(torch.equal(a, e) for a, e in zip(*outs)), shape


def test_constant_plane_gives_bias():
    x = torch.full((2, 3, 4, 4), 7.0, requires_grad=True)
    b = torch.tensor([1.0, -1.0, 0.0])
    y = fg.instance_norm_act(x, torch.ones(3), b, negative_slope=0.5)
    torch.testing.assert_close(y, torch.tensor([1.0, -0.5, 0.0]).view(1, 3, 1, 1).expand(2, 3, 4, 4))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_only_parameters_need_gradients():
    x, dy, w, b = _data(ODD)
    x = x.detach()
    got = _grads(fg.instance_norm_act(x, w, b), dy, (w, b))
    want = _grads(R.instance_norm_act(x, w, b), dy, (w, b))
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, **TOL[torch.float32])


def test_reference_backend_gives_the_same_values():
    x, dy, w, b = _data(ODD)
    fast = fg.instance_norm_act(x, w, b)
    with fg.backend("reference"):
        ref = fg.instance_norm_act(x, w, b)
    torch.testing.assert_close(fast, ref)


# ---- op contracts ----------------------------------------------------------------------

def test_gradcheck_float64():
    for layout in ("contiguous", "channels_last"):
        x, _, w, b = _data((2, 3, 5, 4), torch.float64, layout)
        assert torch.autograd.gradcheck(lambda a, c, d: fg.instance_norm_act(a, c, d), (x, w, b))
    x, _, _, _ = _data((2, 3, 5, 4), torch.float64)
    assert torch.autograd.gradcheck(lambda a: fg.instance_norm_act(a, activation="identity"), (x,))


def _op_samples():
    F = torch.ops.fastgan
    samples = []
    for layout, affine, act in (("contiguous", True, 1), ("channels_last", False, 1),
                                ("contiguous", False, 0), ("channels_last", True, 0)):
        x, dy, w, b = _data((2, 3, 5, 4), torch.float32, layout)
        w, b = (w, b) if affine else (None, None)
        samples.append((F.instance_norm_act_forward, (x, w, b, 1e-5, 0.2, act)))
        _, mean, rstd = F.instance_norm_act_forward(x.detach(), w, b, 1e-5, 0.2, act)
        wd = w.detach() if affine else None
        bd = b.detach() if affine else None
        samples.append((F.instance_norm_act_backward,
                        (dy, x.detach(), wd, bd, mean, rstd, 0.2, act, layout == "contiguous")))
    return samples


@pytest.mark.parametrize("index", range(8))
def test_opcheck(index):
    op, args = _op_samples()[index]
    torch.library.opcheck(op, args)


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    x, dy, w, b = _data((2, 3, 6, 5))

    def fn(t, weight, bias):
        return fg.instance_norm_act(t * 2.0, weight, bias) * 3.0

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    got = compiled(x, w, b)
    want = fn(x, w, b)
    torch.testing.assert_close(got, want)
    for a, e in zip(_grads(got, dy, (x, w, b)), _grads(want, dy, (x, w, b))):
        torch.testing.assert_close(a, e)


def test_compile_inductor_training_step_has_no_graph_break():
    torch._dynamo.reset()
    from torch._dynamo.utils import counters

    counters.clear()
    block = ConvNormAct(3, 4, 3, 1, 1)
    x = torch.randn(2, 3, 8, 8)
    compiled = torch.compile(block, fullgraph=True)
    want = block(x)
    want.sum().backward()
    grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    got = compiled(x)
    got.sum().backward()
    torch.testing.assert_close(got, want)
    for p, g in zip(block.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)
    assert not counters["graph_break"]


# ---- modules ---------------------------------------------------------------------------

def test_module_loads_instance_norm_state_dict():
    torch.manual_seed(0)
    src = nn.InstanceNorm2d(6, affine=True)
    with torch.no_grad():
        src.weight.uniform_(0.5, 1.5)
        src.bias.uniform_(-0.5, 0.5)
    mod = InstanceNormAct(6, affine=True, negative_slope=0.2)
    mod.load_state_dict(src.state_dict())
    x = torch.randn(2, 6, 9, 9)
    torch.testing.assert_close(mod(x), nn.functional.leaky_relu(src(x), 0.2))
    assert set(InstanceNormAct(6).state_dict()) == set(nn.InstanceNorm2d(6).state_dict()) == set()
    assert "activation=leaky_relu, negative_slope=0.2" in repr(mod)


def test_module_drops_running_stats_with_a_warning():
    src = nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    mod = InstanceNormAct(4, affine=True)
    with pytest.warns(UserWarning, match="running_mean"):
        mod.load_state_dict(src.state_dict())


def test_conv_norm_act_blocks():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    block = ConvNormAct(3, 8)  # pix2pix: 4x4, stride 2, InstanceNorm, LeakyReLU(0.2)
    assert block.conv.bias is None
    want = nn.functional.leaky_relu(
        nn.functional.instance_norm(block.conv(x), weight=block.norm.weight, bias=block.norm.bias), 0.2)
    torch.testing.assert_close(block(x), want)
    up = ConvNormAct(8, 3, transposed=True, activation="relu")
    assert up(block(x)).shape == (2, 3, 16, 16) and (up(block(x)) >= 0).all()
    bn = ConvNormAct(3, 8, norm="batch", activation="relu")
    assert isinstance(bn.norm, nn.BatchNorm2d) and isinstance(bn.act, nn.ReLU)
    assert bn(x).shape == (2, 8, 8, 8)
    plain = ConvNormAct(3, 8, norm="none", activation="identity")
    assert plain.conv.bias is not None
    torch.testing.assert_close(plain(x), plain.conv(x))


# ---- bad input -------------------------------------------------------------------------

def test_single_pixel_plane_raises_like_pytorch():
    x = torch.randn(1, 512, 1, 1)
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training") as ours:
        fg.instance_norm_act(x)
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        nn.InstanceNorm2d(512)(x)
    assert "(1, 512, 1, 1)" in str(ours.value) and "instance_norm_act" in str(ours.value)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        InstanceNormAct(512)(x)
    with pytest.raises(RuntimeError, match="more than 1 spatial element"):
        torch.ops.fastgan.instance_norm_act_forward(x, None, None, 1e-5, 0.2, 1)


def test_bad_input_is_named():
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"expected 4 channels, got x of shape \(2, 3, 8, 8\)"):
        InstanceNormAct(4)(x)
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(3,\)"):
        fg.instance_norm_act(x, torch.ones(4), torch.zeros(4))
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\).*unsqueeze"):
        fg.instance_norm_act(torch.randn(3, 8, 8))
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64, got torch.uint8"):
        fg.instance_norm_act(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="bias must be float16"):
        fg.instance_norm_act(x, torch.ones(3), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="empty batch"):
        fg.instance_norm_act(torch.randn(0, 3, 8, 8))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        fg.instance_norm_act(x, eps=-1.0)
    with pytest.raises(ValueError, match="activation must be one of leaky_relu, relu, identity"):
        fg.instance_norm_act(x, activation="gelu")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fg.instance_norm_act(x.numpy())
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        InstanceNormAct(0)


def test_nan_input_is_named(monkeypatch):
    x = torch.randn(2, 3, 8, 8)
    x[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="x contains NaN or Inf"):
        fg.instance_norm_act(x)
    monkeypatch.setenv("FASTGAN_CHECKS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.isnan(fg.instance_norm_act(x)[1, 2]).all()


def test_direct_op_call_cannot_reach_the_kernel_with_garbage():
    F = torch.ops.fastgan
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="activation code"):
        F.instance_norm_act_forward(x, None, None, 1e-5, 0.2, 3)
    with pytest.raises(RuntimeError, match="weight must have shape"):
        F.instance_norm_act_forward(x, torch.ones(2), None, 1e-5, 0.2, 1)
    _, mean, rstd = F.instance_norm_act_forward(x, None, None, 1e-5, 0.2, 1)
    with pytest.raises(RuntimeError, match="mean and rstd"):
        F.instance_norm_act_backward(x, x, None, None, mean[:1], rstd, 0.2, 1, True)
    with pytest.raises(RuntimeError, match="grad_y must have x's shape"):
        F.instance_norm_act_backward(x[:1], x, None, None, mean, rstd, 0.2, 1, True)


# ---- CUDA kernels (csrc/cuda/instance_norm_act.cu), on a GPU only ------------------------

needs_cuda_kernels = pytest.mark.skipif(
    not (torch.cuda.is_available() and fg.build_info()["cuda_kernels"]),
    reason="needs a CUDA device and fastgan built with its CUDA kernels")


@pytest.mark.gpu
@needs_cuda_kernels
@pytest.mark.parametrize("shape", [ODD, (2, 3, 70, 70), (2, 40, 33, 17), (1, 2, 1, 2)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_cuda_kernels_match_reference(dtype, layout, shape):
    def on_gpu(t):  # the layout made on the device: .cuda() would densify a slice
        t = t.detach().cuda()
        if layout == "channels_last":
            return t.contiguous(memory_format=torch.channels_last)
        return torch.cat([t, t], dim=3)[..., ::2] if layout == "sliced" else t

    x, dy, w, b = _data(shape, dtype)
    x, dy = on_gpu(x).requires_grad_(), on_gpu(dy)
    w, b = w.detach().cuda().requires_grad_(), b.detach().cuda().requires_grad_()
    with fg.backend("cuda"):
        got = fg.instance_norm_act(x, w, b)
    want = R.instance_norm_act(x, w, b)
    tol = dict(TOL[dtype]) if dtype != torch.float32 else dict(rtol=1e-4, atol=1e-5)  # fast math
    torch.testing.assert_close(got, want, **tol)
    if layout == "channels_last":
        assert got.is_contiguous(memory_format=torch.channels_last)
    for a, e in zip(_grads(got, dy, (x, w, b)), _grads(want, dy, (x, w, b))):
        torch.testing.assert_close(a, e, rtol=tol["rtol"], atol=tol["atol"] * 40)


@pytest.mark.parametrize("avx512", ["1", "0"])
@pytest.mark.parametrize("channels", [16, 48, 80, 128])  # one block; a partial block; 4 + 1; 2 x 4
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("act", ["leaky", "identity"])
def test_channels_last_register_tiles(monkeypatch, avx512, channels, dtype, act):
    """channels_last with C % 16 == 0 runs the register-tiled loops on AVX-512 CPUs
    (cpu/norm_nhwc_tiles.h) and the plain NHWC loops with FASTGAN_CPU_AVX512=0: both
    against the eager pair, over more than one 256-pixel chunk."""
    monkeypatch.setenv("FASTGAN_CPU_AVX512", avx512)
    name, slope = ACTS[act]
    shape = (2, channels, 23, 17)  # 391 pixels: a full chunk and a partial one
    x, dy, w, b = _data(shape, dtype, "channels_last", seed=channels)
    eager, norm = _eager(channels, True, name, slope, w.detach(), b.detach(), dtype)
    got = fg.instance_norm_act(x, w, b, negative_slope=slope, activation=name)
    assert got.is_contiguous(memory_format=torch.channels_last)
    want = eager(x)
    ours = (got, *_grads(got, dy, (x, w, b)))
    theirs = (want, *_grads(want, dy, (x, norm.weight, norm.bias)))
    # Against float64: no worse than twice the eager pair's own error (weight / bias
    # gradients sum 782 products, where fp32 rounding alone reaches ~1e-5).
    x64, dy64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, dy, w, b))
    y64 = R.instance_norm_act(x64, w64, b64, negative_slope=slope, activation=name)
    truth = (y64, *_grads(y64, dy64, (x64, w64, b64)))
    for what, a, e, t in zip(("y", "dx", "dweight", "dbias"), ours, theirs, truth):
        err, eager_err = (a.double() - t).abs().max(), (e.double() - t).abs().max()
        assert err <= 2 * eager_err + 1e-6, (what, err.item(), eager_err.item())
