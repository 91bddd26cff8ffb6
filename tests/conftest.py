import os
from pathlib import Path

import torch

# Triton kernels run under the interpreter where there is no GPU; this must be set
# before triton or fastgan is imported (the default backend on the CPU stays C++).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

import fastgan as fg  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "celeba-89x109"

# Tolerances of a kernel against the reference (both accumulate in fp32 / fp64).
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
    torch.float16: dict(rtol=2e-3, atol=2e-4),
    torch.bfloat16: dict(rtol=1.6e-2, atol=2e-3),
}

needs_cpu_kernels = pytest.mark.skipif(
    not fg.build_info()["cpu_kernels"], reason="the compiled extension fastgan._C is not built")


@pytest.fixture(autouse=True)
def _restore_backend():
    previous = fg.get_backend()
    yield
    fg.set_backend(previous)


@pytest.fixture
def one_thread():
    """Tiny models and the data code's many small tensor ops: one thread is fastest on a
    shared 2-core machine, where OpenMP threads waiting for each other cost several times."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def faces_dir():
    if not DATA_DIR.is_dir():
        pytest.skip(f"real face data not found at {DATA_DIR} (../shared/data is absent)")
    return DATA_DIR


def make_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values as t in another memory layout: contiguous, channels_last or a slice."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":  # a strided view into a wider tensor
        n, c, h, w = t.shape
        wide = torch.zeros(n, c, h, 2 * w + 1, dtype=t.dtype)
        wide[..., 1::2] = t
        return wide[..., 1::2]
    raise ValueError(layout)


def seed_everything(seed: int = 0) -> None:
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def assert_compiled_matches_eager(fn, x, y, mask) -> None:
    """fn(x, y, mask) -> a scalar loss, compiled with fullgraph=True through AOTAutograd
    (backend aot_eager, so its backward is the compiled one): the loss and its gradients
    for x and y equal eager's."""

    def value_and_grads(f):
        loss = f(x, y, mask)
        return (loss, *torch.autograd.grad(loss, (x, y)))

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    for a, b in zip(value_and_grads(compiled), value_and_grads(fn)):
        torch.testing.assert_close(a, b)


def one_line_error(capsys) -> str:
    """The one 'error:' line a command wrote to stderr (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    return lines[0]


TINY_TRAIN = ["--data", "synthetic", "--size", "32", "--batch", "2", "--ngf", "8", "--ndf", "8", "--workers", "0",
              "--synthetic-n", "8", "--val-images", "2", "--samples", "0", "--no-compile", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The folder of a finished 1-step pix2pix run (32 px, 8 wide, TINY_TRAIN), on one thread."""
    from fastgan.cli import main

    out = tmp_path_factory.mktemp("tiny-run")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "pix2pix", *TINY_TRAIN, "--steps", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(n)
    return out
