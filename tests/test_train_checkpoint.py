"""Checkpoints: atomic writes (a crash mid-write, a real kill -9), weights_only loading,
keep-last-N and best; SIGTERM saves and exits cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastgan.train import train
from fastgan.train import checkpoint as ckpt
from fastgan.train.checkpoint import CheckpointManager, atomic_save, load_checkpoint

from train_config import tiny_config

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(out, **kw):
    return tiny_config(out, **{"steps": 4, "save_every": 2, "samples": 0, **kw})


def test_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    atomic_save({"format": ckpt.FORMAT, "step": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def crashing_save(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        f.flush()
        f.truncate(f.tell() // 2)        # half a file on disk, then the process "dies"
        raise OSError("simulated crash")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_save({"format": ckpt.FORMAT, "step": 2, "w": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]     # the partial temp file is gone


def test_stale_temp_files_are_removed_and_never_loaded(tmp_path):
    d = tmp_path / "checkpoints"
    d.mkdir()
    (d / ".step-00000009.pt.tmp-123").write_bytes(b"partial")
    m = CheckpointManager(d)
    assert not any(d.iterdir()) and m.latest() is None


def test_latest_skips_an_unreadable_checkpoint(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=5)
    m.save({"step": 1}, 1)
    m.path_for(2).write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="does not load"):
        assert m.latest() == m.path_for(1)


def test_checkpoints_load_with_weights_only_and_hold_everything(tmp_path):
    result = train(tiny(tmp_path, steps=2))
    state = torch.load(result.checkpoint, weights_only=True)    # no pickled classes inside
    assert state["format"] == ckpt.FORMAT and state["step"] == 2
    assert set(state) >= {"config", "models", "optimizers", "schedulers", "rng", "best", "extra"}
    # G_ema: the generator's running average (pix2pix default), which inference uses
    assert set(state["models"]) == {"G", "G_ema", "D"} and set(state["optimizers"]) == {"G", "D"}
    assert state["config"]["recipe"] == "pix2pix" and state["config"]["recon_loss"] == "masked-ssim+l1"  # resolved
    assert state["rng"]["torch"].dtype == torch.uint8


def test_keep_last_n_and_best(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=2)
    paths = [m.save({"step": s, "w": torch.full((2,), float(s))}, s) for s in (1, 2, 3)]
    m.mark_best(paths[1])
    m.save({"step": 4}, 4)
    assert [s for s, _ in m.steps()] == [3, 4]                 # pruned to the last two
    assert load_checkpoint(m.best_path)["step"] == 2           # best survives its step file
    assert m.latest() == m.path_for(4)


def test_best_follows_validation_ssim(tmp_path, monkeypatch):
    from fastgan.train import loop
    scores = iter([0.5, 0.7, 0.6])
    monkeypatch.setattr(loop, "evaluate", lambda *a, **k: {"val_ssim": next(scores), "val_psnr": 20.0})
    train(tiny(tmp_path, steps=6, save_every=2, keep_last=5))
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["step"] == 4 and best["best"]["value"] == 0.7


def _spawn_training(out: Path, steps: int, save_every: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "fastgan", "train", "pix2pix", "--data", "synthetic", "--size", "32",
           "--batch", "4", "--ngf", "8", "--ndf", "8", "--steps", str(steps), "--save-every", str(save_every),
           "--log-every", "1", "--out", str(out), "--workers", "0", "--synthetic-n", "12",
           "--val-images", "4", "--samples", "0", "--no-compile", "--no-progress"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoints(proc, directory: Path, count: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if directory.is_dir() and len(list(directory.glob("step-*.pt"))) >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no checkpoint appeared")


def test_kill_9_leaves_a_loadable_checkpoint_and_the_run_resumes(tmp_path):
    proc = _spawn_training(tmp_path, steps=100000, save_every=1)   # saving all the time
    _wait_for_checkpoints(proc, tmp_path / "checkpoints", 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(tmp_path / "checkpoints")           # the latest complete one
    assert state["step"] >= 3
    result = train(tiny(tmp_path, steps=state["step"] + 1, save_every=1, log_every=1, resume=True))
    assert result.step == state["step"] + 1


def test_sigterm_saves_and_exits_cleanly(tmp_path):
    proc = _spawn_training(tmp_path, steps=100000, save_every=50)
    # wait until it is training (the first record), then stop it between saves
    end = time.monotonic() + 60
    metrics = tmp_path / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert time.monotonic() < end and proc.poll() is None, "training did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM at step" in err
    state = load_checkpoint(tmp_path / "checkpoints")
    step = int(err.split("stopped by SIGTERM at step ")[1].split(":")[0])
    assert state["step"] == step >= 2
