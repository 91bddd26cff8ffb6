"""The trainer: exact resume, NaN/Inf handling, torch.compile without graph breaks, the metrics
log, sample grids and configuration errors (CPU, tiny models)."""

import json
import math
import signal

import pytest
import torch

from fastgan.train import ConfigError, TrainConfig, TrainingDiverged, train
from fastgan.train.checkpoint import load_checkpoint
from fastgan.train.loop import Trainer
from fastgan.train.recipes import Pix2Pix

from train_config import SMALL_RECIPE_PARTS, tiny_config


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(out, recipe="pix2pix", **kw):
    return tiny_config(out, recipe, **{**SMALL_RECIPE_PARTS, **kw})


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def losses(out):
    return [{k: v for k, v in r.items() if k == "step" or k.startswith(("loss_", "d_", "g_"))}
            for r in records(out)]


# ------------------------------------------------------------------ exact resume

def stopped_by_signal_after(steps: int, monkeypatch, cfg: TrainConfig):
    """Train ``cfg`` as if SIGTERM arrived during step ``steps``: the run stops after it."""
    real_step = Trainer._train_step

    def step(self, batch):
        if self.step == steps - 1:
            self._on_signal(signal.SIGTERM, None)
        return real_step(self, batch)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_train_step", step)
        return train(cfg)


@pytest.mark.parametrize("recipe,compiled", [("pix2pix", False), ("simgan", False), ("pix2pix", True)])
def test_resume_logs_the_same_losses_as_an_uninterrupted_run(tmp_path, monkeypatch, recipe, compiled):
    """A 10-step run stopped by a signal at step 4 and resumed: metrics.jsonl equals the
    straight run's. The synthetic set (12 faces, 3 batches) makes the resume start mid-epoch;
    dropout (pix2pix) and the history buffer (simgan) need the RNG and buffer state restored
    (64 px: the U-Net's dropout layers start at its fifth level, which 32 px does not reach);
    the recipe defaults' linear LR decay and generator EMA need their state restored too."""
    kw = dict(dropout=recipe == "pix2pix", compile=compiled, steps=10,
              size=64 if recipe == "pix2pix" else 32)
    straight = train(tiny(tmp_path / "a", recipe, **kw))
    first = stopped_by_signal_after(4, monkeypatch, tiny(tmp_path / "b", recipe, **kw))
    assert (first.step, first.stopped) == (4, "signal")
    resumed = train(tiny(tmp_path / "b", recipe, **{**kw, "resume": True}))
    assert straight.step == resumed.step == 10
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert [r["step"] for r in b] == [2, 4, 6, 8, 10]
    assert a == b
    sa, sb = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for k, v in sa["models"]["G"].items():
        torch.testing.assert_close(sb["models"]["G"][k], v, rtol=0, atol=0)


def test_resume_refuses_a_changed_configuration(tmp_path):
    train(tiny(tmp_path, steps=2))
    with pytest.raises(ConfigError, match="--lr 0.001 differs"):
        train(tiny(tmp_path, steps=4, resume=True, lr=1e-3))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(tiny(tmp_path, steps=4))


def test_resume_keeps_the_saved_run_length(tmp_path):
    train(tiny(tmp_path, steps=2))
    result = train(tiny(tmp_path, steps=None, resume=True))    # no --steps: the saved 2
    assert result.step == 2 and [r["step"] for r in records(tmp_path)] == [2]
    assert result.checkpoint == tmp_path / "checkpoints" / "step-00000002.pt"


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    result = train(tiny(tmp_path, steps=2, resume=True))
    assert result.step == 2 and [r["step"] for r in records(tmp_path)] == [2]


def test_resume_drops_records_after_the_checkpoint(tmp_path):
    """A run killed after logging past its last checkpoint: the resumed run redoes those steps
    and metrics.jsonl holds each step once."""
    train(tiny(tmp_path, steps=6, save_every=4))            # records 2, 4, 6; checkpoints 4, 6
    (tmp_path / "checkpoints" / "step-00000006.pt").unlink()
    (tmp_path / "checkpoints" / "best.pt").unlink(missing_ok=True)
    train(tiny(tmp_path, steps=8, resume=True))
    assert [r["step"] for r in records(tmp_path)] == [2, 4, 6, 8]


# ------------------------------------------------------------------ NaN / Inf

def _poison_generator_loss(monkeypatch, bad_calls):
    calls = {"n": 0}
    original = Pix2Pix.g_loss

    def g_loss(self, b, gen):
        out = original(self, b, gen)
        calls["n"] += 1
        if calls["n"] in bad_calls:
            out = {**out, "loss_g": out["loss_g"] * float("nan"), "g_recon": out["g_recon"] * float("nan")}
        return out

    monkeypatch.setattr(Pix2Pix, "g_loss", g_loss)


def test_nan_stops_naming_the_step_and_the_last_checkpoint(tmp_path, monkeypatch):
    _poison_generator_loss(monkeypatch, {5})
    with pytest.raises(TrainingDiverged) as e:
        train(tiny(tmp_path, steps=8, log_every=2, save_every=4))
    msg = str(e.value)
    assert "at step 5" in msg and "loss_g" in msg and "g_recon" in msg
    assert "step-00000004.pt (step 4)" in msg
    assert [r["step"] for r in records(tmp_path)] == [2, 4]       # nothing logged past the NaN
    assert not (tmp_path / "checkpoints" / "step-00000006.pt").exists()
    state = load_checkpoint(tmp_path / "checkpoints")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["models"]["G"].values())


def test_nan_steps_are_skipped_up_to_max_bad_steps(tmp_path, monkeypatch):
    _poison_generator_loss(monkeypatch, {3, 6})
    result = train(tiny(tmp_path, steps=8, max_bad_steps=2))
    assert result.step == 8
    recs = records(tmp_path)
    assert recs[-1]["bad_steps"] == 2
    assert all(math.isfinite(r["loss_g"]) for r in recs)      # means over the good steps only
    state = load_checkpoint(result.checkpoint)
    assert all(torch.isfinite(v).all() for v in state["models"]["G"].values())
    assert all(torch.isfinite(t).all() for s in state["optimizers"]["G"]["state"].values()
               for t in s.values())


def test_too_many_bad_steps_stop_the_run(tmp_path, monkeypatch):
    _poison_generator_loss(monkeypatch, {2, 3, 4})
    with pytest.raises(TrainingDiverged, match=r"at step 2; 3 bad steps exceed --max-bad-steps 2"):
        train(tiny(tmp_path, steps=8, max_bad_steps=2))


# ------------------------------------------------------------------ compile

def test_compiled_steps_have_no_graph_breaks(tmp_path):
    """pix2pix's generate, D step and G step (fused losses, fused norm) each trace as one graph,
    forward and backward (aot_eager: dynamo + AOTAutograd, without inductor's codegen)."""
    import torch._dynamo

    torch._dynamo.reset()
    result = train(tiny(tmp_path, steps=4, compile=True, compile_backend="aot_eager", log_every=1))
    recs = records(tmp_path)
    assert all(r["graph_breaks"] == 0 for r in recs)
    assert recs[-1]["recompiles"] == 0
    assert result.step == 4

    # and directly: fullgraph=True raises on any graph break
    from fastgan.train.recipes import RECIPES
    cfg = tiny(tmp_path / "direct").resolved()
    recipe = RECIPES["pix2pix"](cfg, torch.device("cpu"))
    recipe.nets = recipe.train_models = recipe.build()
    b = recipe.prepare({"image": torch.rand(2, 3, 32, 32), "occluded": torch.rand(2, 3, 32, 32),
                        "mask": (torch.rand(2, 1, 32, 32) > 0.5).float()})
    gen = torch.compile(recipe.generate, fullgraph=True, backend="aot_eager")(b)
    d = torch.compile(recipe.d_loss, fullgraph=True, backend="aot_eager")(b, gen["output"].detach())
    d["loss_d"].backward()
    g = torch.compile(recipe.g_loss, fullgraph=True, backend="aot_eager")(b, gen)
    g["loss_g"].backward()
    assert all(p.grad is not None for p in recipe.nets["G"].parameters())


# ------------------------------------------------------------------ outputs

def test_metrics_samples_and_checkpoints_layout(tmp_path):
    result = train(tiny(tmp_path, steps=6, log_every=2, save_every=3, keep_last=2))
    recs = records(tmp_path)
    assert [r["step"] for r in recs] == [2, 3, 4, 6]          # log steps, plus save/validation steps
    for r in recs:
        assert {"step", "loss_d", "d_real", "d_fake", "loss_g", "g_gan", "g_recon", "img_per_s", "lr"} <= set(r)
        assert isinstance(r["step"], int) and r["img_per_s"] > 0
    val = [r for r in recs if "val_ssim" in r]
    assert [r["step"] for r in val] == [3, 6]
    assert {"val_psnr", "val_ssim_occluded", "val_psnr_occluded"} <= set(val[0])
    samples = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert samples == ["step-00000003.png", "step-00000006.png"]
    from PIL import Image
    with Image.open(tmp_path / "samples" / samples[0]) as im:   # 2 rows of occluded | output | target
        assert im.size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "step-00000003.pt", "step-00000006.pt"]
    assert result.best == tmp_path / "checkpoints" / "best.pt"


def test_minutes_budget_ends_the_run(tmp_path):
    result = train(tiny(tmp_path, steps=None, minutes=0.001))
    assert result.stopped == "minutes" and result.step >= 1
    assert records(tmp_path)[-1]["step"] == result.step and result.checkpoint.exists()


def test_linear_lr_decay(tmp_path):
    train(tiny(tmp_path, steps=8, lr_decay="linear", decay_start=0.5, log_every=2))
    lrs = [r["lr"] for r in records(tmp_path)]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(0.0)
    assert lrs[2] < lrs[1]


# ------------------------------------------------------------------ configuration errors

@pytest.mark.parametrize("option,value,words", [
    ("batch", 0, "--batch must be an integer >= 1, got 0"),
    ("size", 8, "--size must be an integer >= 16"),
    ("lr", -1.0, "--lr must be a finite number > 0"),
    ("gan_loss", "wgan", "--gan-loss must be one of vanilla, lsgan, hinge"),
    ("recon_loss", "l3", "--recon-loss must be one of"),
    ("occlusion", "scarf", "--occlusion must be one of"),
    ("recipe", "cyclegan", "--recipe must be one of"),
    ("beta1", 1.5, "--beta1 must be a finite number >= 0 and <= 1"),
    ("amp", "fp16", "--amp must be one of auto, bf16, fp32"),
    ("log_every", 1.5, "--log-every must be an integer"),
    ("size", 48, "--size must be a power of two for the U-Net"),
    ("steps", None, "give --steps N or --minutes M"),
])
def test_bad_config_values_name_the_option(tmp_path, option, value, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("+", r"\+")):
        train(tiny(tmp_path, **{option: value}))


def test_toml_config_and_unknown_keys(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('recipe = "vae"\nsize = 32\nsteps = 3\n[train]\nlog-every = 7\n')
    cfg = TrainConfig.from_toml(path)
    assert (cfg.recipe, cfg.size, cfg.steps, cfg.log_every) == ("vae", 32, 3, 7)
    path.write_text("sise = 32\n")
    with pytest.raises(ConfigError, match="unknown option 'sise'"):
        TrainConfig.from_toml(path)
    path.write_text("size = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainConfig.from_toml(path)
