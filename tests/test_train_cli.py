"""``fastgan train`` / ``fastgan infer`` end to end, the Reconstructor contract, the demo, and
DDP with two CPU processes (gloo) under torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastgan.cli import main
from fastgan.data import write_png
from fastgan.train import load_reconstructor

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--data", "synthetic", "--size", "32", "--batch", "4", "--ngf", "8", "--ndf", "8",
        "--workers", "0", "--synthetic-n", "12", "--val-images", "4", "--samples", "2", "--no-compile",
        "--no-progress", "--latent-dim", "16"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    g = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(n):
        p = folder / f"face{i}.png"
        write_png(p, torch.rand(3, size + 6, size, generator=g))   # not square: centre-cropped
        paths.append(p)
    return paths


def test_cli_train_then_infer(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "pix2pix", *TINY, "--steps", "3", "--log-every", "1", "--out", str(out)]) == 0
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3]
    assert (out / "checkpoints" / "step-00000003.pt").exists() and (out / "checkpoints" / "best.pt").exists()
    assert any((out / "samples").glob("*.png"))
    err = capsys.readouterr().err
    assert "held-out ssim" in err

    src, dst = tmp_path / "in", tmp_path / "out"
    _images(src, 3, 40)
    assert main(["infer", str(out / "checkpoints" / "best.pt"), str(src), str(dst)]) == 0
    written = sorted(p.name for p in dst.iterdir())
    assert written == ["face0.png", "face1.png", "face2.png"]
    from PIL import Image
    with Image.open(dst / "face0.png") as im:
        assert im.size == (32, 32)


def test_cli_config_file_and_errors(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text('steps = 2\nlog_every = 1\nrecon_loss = "ssim+l1"\n')
    out = tmp_path / "run"
    assert main(["train", "pix2pix", *TINY, "--config", str(toml), "--out", str(out)]) == 0
    from fastgan.train.checkpoint import load_checkpoint
    cfg = load_checkpoint(out / "checkpoints")["config"]
    assert cfg["recon_loss"] == "ssim+l1" and cfg["steps"] == 2
    assert main(["train", "pix2pix", *TINY, "--steps", "2", "--batch", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--batch must be an integer >= 1, got 0" in capsys.readouterr().err
    # resuming with a changed option is refused, naming it
    assert main(["train", "pix2pix", *TINY, "--config", str(toml), "--out", str(out), "--resume",
                 "--steps", "3", "--recon-loss", "l1"]) == 2
    assert "--recon-loss 'l1' differs" in capsys.readouterr().err


def test_completion_infer_needs_and_uses_masks(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "completion", *TINY, "--steps", "2", "--out", str(out)]) == 0
    src, masks, dst = tmp_path / "in", tmp_path / "mask", tmp_path / "out"
    _images(src, 2, 32)
    for i in range(2):
        m = torch.zeros(1, 32, 32)
        m[:, 8:20, 8:20] = 1
        write_png(masks / f"face{i}.png", m)
    assert main(["infer", str(out / "checkpoints"), str(src), str(dst)]) == 2
    assert "give --mask DIR" in capsys.readouterr().err
    assert main(["infer", str(out / "checkpoints"), str(src), str(dst), "--mask", str(masks)]) == 0
    from fastgan.data.io import decode
    result, _ = decode(dst / "face0.png")
    original, _ = decode(src / "face0.png", 32)
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[8:20, 8:20] = False
    assert torch.equal(result[:, outside], original[:, outside])   # known pixels kept exactly


@pytest.mark.parametrize("recipe", ["pix2pix", "simgan", "vae"])
def test_reconstructor_contract(tmp_path, recipe):
    out = tmp_path / recipe
    assert main(["train", recipe, *TINY, "--steps", "1", "--out", str(out)]) == 0
    rec = load_reconstructor(out / "checkpoints" / "step-00000001.pt")
    assert (rec.size, rec.recipe) == (32, recipe) and isinstance(rec.config, dict)
    assert rec.occlusion == {"pix2pix": "nose-mask", "simgan": "none", "vae": "nose-mask"}[recipe]
    x = torch.rand(2, 3, 32, 32)
    y = rec(x, torch.zeros(2, 1, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y.min() >= 0 and y.max() <= 1 and not y.requires_grad
    torch.testing.assert_close(rec(x, torch.zeros(2, 1, 32, 32)), y)    # eval mode: deterministic
    with pytest.raises(ValueError, match="32x32"):
        rec(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))


def test_demo_runs_a_short_training(tmp_path, capsys):
    from fastgan.demo import run_training_demo
    assert run_training_demo(out=str(tmp_path / "demo"), steps=2, size=32, batch=4, width=8, compile=False) == 0
    text = capsys.readouterr().out
    assert "held-out SSIM" in text and "PSNR" in text and "sample grid:" in text
    grid = Path(text.split("sample grid:")[1].split()[0])
    assert grid.exists()


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "run_rank.py"
    script.write_text(f"""
import os, torch
from fastgan.train import TrainConfig
from fastgan.train.loop import Trainer
cfg = TrainConfig(recipe="pix2pix", data="synthetic", size=32, batch=2, steps=3, ngf=8, ndf=8, log_every=1,
                  save_every=3, out={str(tmp_path / "run")!r}, workers=0, synthetic_n=12, val_images=4,
                  samples=0, compile=False, progress=False, device="cpu")
t = Trainer(cfg)
t.run()
torch.save({{k: v.state_dict() for k, v in t.recipe.nets.items()}},
           {str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.pt")
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    moved = False
    for net in ("G", "D"):
        for k, v in w0[net].items():
            assert torch.equal(v, w1[net][k]), f"{net}.{k} differs between ranks"
    first = torch.load(tmp_path / "run" / "checkpoints" / "step-00000003.pt", weights_only=True)
    for k, v in first["models"]["G"].items():
        assert torch.equal(v, w0["G"][k])
        moved |= bool(v.abs().sum() > 0)
    assert moved
    recs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3]          # rank 0 alone writes the log
    assert recs[0]["img_per_s"] > 0
