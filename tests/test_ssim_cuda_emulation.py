"""The SSIM CUDA kernels' device code, compiled for the CPU with one thread per block
(tests/cuda_emulation/ssim_emulation.cpp), against fastgan.reference: per-plane sums, the
map and both gradients for every padding and stat, float32 and float64, with and without
a mask, on shapes that cross tile boundaries. This checks the index arithmetic of the
tiles, halos and transposed filters where no GPU exists (nvcc only compiles them, see
.ci/check-cuda-compile); the real launches run in the GPU tests."""

import itertools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fastgan import reference as R

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "cuda_emulation" / "ssim_emulation.cpp"
PADDINGS = {0: "valid", 1: "same", 2: "reflect"}
STATS = {0: "ssim", 1: "cs", 2: "mix"}


def build(tmp_path_factory, source: Path) -> Path:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler (g++/c++) to build the CUDA-kernel emulation")
    exe = tmp_path_factory.mktemp("emu") / source.stem
    cmd = [cxx, "-O1", "-std=c++20", f"-I{ROOT / 'csrc'}", str(source), "-o", str(exe)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"building the emulation failed:\n{result.stderr[-3000:]}"
    return exe


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return build(tmp_path_factory, SOURCE)


def run_harness(exe, tmp_path, inputs: dict, args, double: bool):
    """Writes the inputs, runs the harness; returns read(name, shape) for its outputs."""
    np_dtype = np.float64 if double else np.float32
    for name, t in inputs.items():
        if t is not None:
            t.numpy().astype(np_dtype).tofile(tmp_path / f"{name}.bin")
    subprocess.run([str(exe), *map(str, args), str(tmp_path)], check=True)

    def read(name, shape_):
        return torch.from_numpy(np.fromfile(tmp_path / f"{name}.bin", dtype=np_dtype)).view(shape_).double()

    return read


def assert_matches_reference(read, x, y, mask, factor, opts, grads, double):
    """The harness's sums, weights and map, and the gradients grads = (gx, gy) it gave,
    against fastgan.reference with the options opts."""
    xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
    sums, weights = R.ssim_plane_sums(xr, yr, mask, **opts)
    gx_ref, gy_ref = torch.autograd.grad((sums * factor).sum(), (xr, yr))
    ref_map = R.ssim_stat_map(x, y, **opts)
    tol = dict(rtol=1e-9, atol=1e-11) if double else dict(rtol=2e-5, atol=1e-5)
    n, c = x.shape[:2]
    scale = float(weights.max())
    torch.testing.assert_close(read("sums", (n, c)) / scale, sums.detach() / scale, **tol)
    torch.testing.assert_close(read("weights", (n, c)), weights, **tol)
    torch.testing.assert_close(read("map", tuple(ref_map.shape)), ref_map, **tol)
    gscale = float(gx_ref.abs().max())
    for got, want in zip(grads, (gx_ref, gy_ref)):
        torch.testing.assert_close(got / gscale, want / gscale, **tol)


def fold_reflect(gp, h, w, pad):
    """The padded-gradient fold of csrc/cuda/ssim.cu (fold_reflect): the vector-Jacobian
    product of torch's own reflect padding, an oracle independent of fastgan's folds."""
    planes = torch.zeros(gp.shape[0], 1, h, w, dtype=gp.dtype, requires_grad=True)
    padded = torch.nn.functional.pad(planes, (pad,) * 4, mode="reflect")
    (grad,) = torch.autograd.grad(padded, planes, gp.unsqueeze(1))
    return grad.squeeze(1)


# (N, C, H, W, window): several tiles (32, or 16 for float64), ragged edges, small images.
SHAPES = [(2, 2, 37, 45, 11), (1, 1, 33, 70, 15), (2, 1, 13, 11, 3)]
# Every shape x padding x stat, cycling through float32, float32 + mask, float64.
VARIANTS = [(False, False), (False, True), (True, False)]
CASES = [(s, p, st, *VARIANTS[(i + i // 3) % 3])
         for i, (s, p, st) in enumerate(itertools.product(SHAPES, PADDINGS, STATS))]


@pytest.mark.parametrize("shape,padding,stat,double,masked", CASES)
def test_cuda_kernels_match_reference(harness, tmp_path, shape, padding, stat, double, masked):
    n, c, h, w, win = shape
    g = torch.Generator().manual_seed(hash((shape, padding, stat)) % 2**31)
    x = torch.rand(n, c, h, w, generator=g, dtype=torch.float64)
    y = (x + 0.4 * torch.rand(n, c, h, w, generator=g, dtype=torch.float64)).clamp(0, 1)
    mask = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64) if masked else None
    factor = torch.randn(n, c, generator=g, dtype=torch.float64)
    args = (n, c, h, w, win, padding, stat, int(double), 1 if masked else 0, 0.84)
    read = run_harness(harness, tmp_path, dict(x=x, y=y, m=mask, f=factor), args, double)
    r = win // 2
    pad = 0 if padding == 0 else r
    if padding == 2:
        gx = fold_reflect(read("gx", (n * c, h + 2 * pad, w + 2 * pad)), h, w, pad).view(n, c, h, w)
        gy = fold_reflect(read("gy", (n * c, h + 2 * pad, w + 2 * pad)), h, w, pad).view(n, c, h, w)
    else:
        gx, gy = read("gx", (n, c, h, w)), read("gy", (n, c, h, w))
    opts = dict(window_size=win, padding=PADDINGS[padding], stat=STATS[stat], alpha=0.84)
    assert_matches_reference(read, x, y, mask, factor, opts, (gx, gy), double)


VOLUME_SOURCE = ROOT / "tests" / "cuda_emulation" / "ssim_volume_emulation.cpp"


@pytest.fixture(scope="module")
def volume_harness(tmp_path_factory):
    return build(tmp_path_factory, VOLUME_SOURCE)


def fold_reflect_3d(gp, d, h, w, pad):
    """The vector-Jacobian product of torch's 3-D reflect padding (the oracle of the volume
    kernels' padded gradients, folded by csrc/cuda/ssim_volume.cu)."""
    vols = torch.zeros(gp.shape[0], 1, d, h, w, dtype=gp.dtype, requires_grad=True)
    padded = torch.nn.functional.pad(vols, (pad,) * 6, mode="reflect")
    (grad,) = torch.autograd.grad(padded, vols, gp.unsqueeze(1))
    return grad.squeeze(1)


# (N, C, D, H, W, window): two tiles across W, a ragged edge, every padding and stat.
VOLUME_CASES = [((1, 2, 7, 9, 40, 5), p, st, (p + st) % 2 == 1, st != 1)
                for p, st in itertools.product(PADDINGS, STATS)]


@pytest.mark.parametrize("shape,padding,stat,double,masked", VOLUME_CASES)
def test_cuda_volume_kernels_match_reference(volume_harness, tmp_path, shape, padding, stat,
                                             double, masked):
    n, c, d, h, w, win = shape
    g = torch.Generator().manual_seed(hash((shape, padding, stat)) % 2**31)
    x = torch.rand(n, c, d, h, w, generator=g, dtype=torch.float64)
    y = (x + 0.4 * torch.rand(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    mask = torch.rand(n, 1, d, h, w, generator=g, dtype=torch.float64) if masked else None
    factor = torch.randn(n, c, generator=g, dtype=torch.float64)
    args = (n, c, d, h, w, win, padding, stat, int(double), int(masked), 0.84)
    read = run_harness(volume_harness, tmp_path, dict(x=x, y=y, m=mask, f=factor), args, double)
    pad = 0 if padding == 0 else win // 2
    if padding == 2:
        padded = (n * c, d + 2 * pad, h + 2 * pad, w + 2 * pad)
        gx, gy = (fold_reflect_3d(read(k, padded), d, h, w, pad).view(x.shape) for k in ("gx", "gy"))
    else:
        gx, gy = read("gx", x.shape), read("gy", x.shape)
    opts = dict(window_size=win, padding=PADDINGS[padding], stat=STATS[stat], alpha=0.84)
    assert_matches_reference(read, x, y, mask, factor, opts, (gx, gy), double)
