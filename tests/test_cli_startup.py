"""``fastgan --help`` and ``fastgan info`` start fast: building the parser imports neither the
metrics, nor the training loop, nor torch.compile's machinery (Triton's ops need it)."""

import subprocess
import sys

HEAVY = ("fastgan.metrics.evaluate", "fastgan.train.loop", "fastgan.train.inference", "fastgan.models",
         "torch._dynamo", "torch._inductor", "triton")


def test_building_the_parser_imports_no_heavy_module():
    code = ("import sys; from fastgan.cli import build_parser; build_parser(); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_info_runs_without_them():
    code = ("import sys; from fastgan.cli import main; main(['info', '--json']); "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]" and '"cpu_kernels"' in out.stdout
