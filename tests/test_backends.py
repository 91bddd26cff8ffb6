"""Backend selection, the reference fallback and the build facts."""

import json
import os
import subprocess
import sys

import pytest
import torch

import fastgan as fg


def test_set_and_get_backend():
    fg.set_backend("reference")
    assert fg.get_backend() == "reference"
    with fg.backend("auto"):
        assert fg.get_backend() == "auto"
    assert fg.get_backend() == "reference"


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend must be one of auto, cuda, triton, cpu, reference; got 'gpu'"):
        fg.set_backend("gpu")


def test_cuda_backend_on_cpu_tensors_says_why():
    x = torch.rand(1, 3, 8, 8)
    with fg.backend("cuda"), pytest.raises(RuntimeError, match="backend 'cuda' cannot run"):
        fg.masked_l1(x, x)


def test_reference_backend_gives_the_same_values():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 9, 9, generator=g), torch.rand(2, 3, 9, 9, generator=g)
    fast = fg.masked_l1(x, y), fg.cosine_similarity_loss(x, y)
    with fg.backend("reference"):
        ref = fg.masked_l1(x, y), fg.cosine_similarity_loss(x, y)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b)


def _run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_env_variable_selects_the_backend():
    out = _run_python("import fastgan as fg; print(fg.get_backend())", FASTGAN_BACKEND="reference")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "reference"


def test_pure_python_install_falls_back_with_one_warning():
    code = ("import torch, fastgan as fg; x = torch.rand(2, 3, 8, 8, requires_grad=True); "
            "fg.masked_l1(x, x.detach() * 0).backward(); fg.masked_mse(x, x.detach()); "
            "print(fg.build_info()['compiled_extension'], float(x.grad.abs().sum()))")
    out = _run_python(code, FASTGAN_NO_EXTENSION="1")
    assert out.returncode == 0, out.stderr
    compiled, grad_sum = out.stdout.split()
    assert compiled == "False" and float(grad_sum) > 0
    assert out.stderr.count("falls back to its plain-PyTorch reference") == 1


def test_build_info_reports_the_build():
    info = fg.build_info()
    assert info["version"] == fg.__version__
    assert info["torch"] == torch.__version__
    for key in ("compiled_extension", "cpu_kernels", "cuda_kernels", "cuda_archs", "triton", "triton_usable"):
        assert key in info
    assert info["cuda_kernels"] == (info["compiled_extension"] and bool(info["cuda_archs"]))


def test_cli_info_json():
    out = subprocess.run([sys.executable, "-m", "fastgan", "info", "--json"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == fg.__version__


def test_cli_demo_small():
    out = subprocess.run([sys.executable, "-m", "fastgan", "demo", "--batch", "2", "--size", "32",
                          "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all losses match the reference" in out.stdout
    assert "masked_l1" in out.stdout and "cosine_similarity_loss" in out.stdout


def test_cli_rejects_bad_arguments():
    out = subprocess.run([sys.executable, "-m", "fastgan", "demo", "--batch", "0"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and "--batch" in out.stderr
