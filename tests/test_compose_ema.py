"""pix2pix's predicted-mask composite, the generator EMA and the LR decay over --minutes:
what the defaults now use (README, Quality)."""

import json
import math
import re

import pytest
import torch

from fastgan.train import ConfigError, TrainConfig, load_reconstructor, train
from fastgan.train.checkpoint import load_checkpoint
from fastgan.train.config import default_width
from fastgan.train.recipes import RECIPES
from train_config import tiny_config


def test_pix2pix_defaults_are_the_measured_best():
    cfg = TrainConfig(recipe="pix2pix", steps=1).resolved("cpu")
    assert (cfg.recon_loss, cfg.compose, cfg.ema, cfg.lr_decay) == ("masked-ssim+l1", "predicted", 0.999, "linear")
    assert (cfg.ngf, cfg.ndf) == (32, 32)
    # the width rule: half width only for a CPU at <= 64 px
    assert TrainConfig(recipe="pix2pix", steps=1, size=128).resolved("cpu").ngf == 64
    assert TrainConfig(recipe="pix2pix", steps=1).resolved("cuda").ngf == 64
    assert default_width("vae", 64, "cpu") == 64
    assert default_width("completion", 64, "cpu") == 32 and default_width("completion", 64, "cuda") == 64
    # options given explicitly win over the defaults
    given = TrainConfig(recipe="pix2pix", steps=1, compose="none", ema=0.0, ngf=16).resolved("cpu")
    assert (given.compose, given.ema, given.ngf, given.ndf) == ("none", 0.0, 16, 32)


def test_old_boolean_compose_is_read_as_a_mode():
    assert TrainConfig.from_dict({"compose": True, "steps": 1}).compose == "given"
    assert TrainConfig.from_dict({"compose": False, "steps": 1}).compose == "none"


@pytest.mark.parametrize("option, value, message", [
    ("compose", "guess", "--compose must be one of none, given, predicted"),
    ("ema", 1.0, "--ema must be a decay in [0, 1)"),
    ("ema", -0.5, "--ema must be a finite number"),
    ("lr_decay", "cosine", "--lr-decay must be one of none, linear"),
])
def test_bad_options_name_themselves(option, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(steps=1, **{option: value}).validate()


def test_predicted_mask_model_composes_with_its_own_or_a_given_mask(tmp_path):
    result = train(tiny_config(tmp_path, compose="predicted", ema=0.0, steps=2))
    rec = load_reconstructor(result.checkpoint)
    assert not rec.uses_mask                       # infer needs no --mask
    g = torch.Generator().manual_seed(0)
    occluded = torch.rand(2, 3, 32, 32, generator=g)
    own = rec(occluded)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:16, 8:16] = 1
    given = rec(occluded, mask)
    # with a given mask every pixel outside it is the input's, exactly
    torch.testing.assert_close(given * (1 - mask), occluded * (1 - mask), atol=1e-6, rtol=0)
    assert not torch.allclose(own, given)
    # the model's own composite mixes raw output and input by the predicted mask
    recipe = rec._recipe
    with torch.no_grad():
        raw4 = recipe.nets["G"](occluded * 2 - 1)
    prob = (raw4[:, 3:] + 1) / 2
    expected = ((raw4[:, :3] * prob + (occluded * 2 - 1) * (1 - prob)) + 1) / 2
    torch.testing.assert_close(own, expected.clamp(0, 1), atol=1e-5, rtol=0)


def test_predicted_mask_is_learned_with_its_own_loss(tmp_path):
    result = train(tiny_config(tmp_path, compose="predicted", ema=0.0, steps=2, log_every=1))
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["g_mask"]) and r["g_mask"] > 0 for r in recs)
    assert result.step == 2


def test_ema_weights_are_saved_and_used_for_inference(tmp_path):
    result = train(tiny_config(tmp_path, compose="none", ema=0.5, steps=3))
    state = load_checkpoint(result.checkpoint)
    assert set(state["models"]) >= {"G", "G_ema"}
    ema, trained = state["models"]["G_ema"], state["models"]["G"]
    differs = [k for k in ema if ema[k].is_floating_point() and not torch.equal(ema[k], trained[k])]
    assert differs                                  # an average, not a copy
    rec = load_reconstructor(result.checkpoint)
    for k, v in rec._recipe.nets["G"].state_dict().items():
        torch.testing.assert_close(v, ema[k])


def test_ema_follows_the_weights_by_its_decay():
    from fastgan.train.loop import Trainer

    t = Trainer.__new__(Trainer)
    t.cfg = TrainConfig(steps=10, ema=0.9)
    a, b = [torch.zeros(3)], [torch.ones(3)]
    t._ema_pairs, t.step = (a, b), 100   # ramp done: decay = 0.9
    t._update_ema()
    torch.testing.assert_close(a[0], torch.full((3,), 0.1))
    t.step = 0                           # first step: decay ramps from 1/10
    t._update_ema()
    torch.testing.assert_close(a[0], torch.full((3,), 0.1 * 0.1 + 0.9))


def test_lr_decays_to_zero_by_the_end_of_minutes():
    from fastgan.train.loop import _lr_factor

    cfg = TrainConfig(minutes=1.0, lr_decay="linear", decay_start=0.5)
    done = {"value": 0.0}
    factor = _lr_factor(cfg, lambda step: done["value"])
    for fraction, expected in [(0.0, 1.0), (0.4, 1.0), (0.75, 0.5), (1.0, 0.0)]:
        done["value"] = fraction
        assert factor(0) == pytest.approx(expected)


def test_minutes_run_ends_with_lr_zero(tmp_path):
    result = train(tiny_config(tmp_path, steps=None, minutes=0.05, lr_decay="linear", decay_start=0.0,
                               log_every=1, save_every=10**6, val_every=10**6))
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert result.stopped == "minutes"
    lrs = [r["lr"] for r in recs]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.5 * 2e-4


def test_masked_loss_still_composes_with_the_given_mask():
    recipe = RECIPES["pix2pix"](TrainConfig(steps=1, recon_loss="masked-l1").resolved("cpu"), torch.device("cpu"))
    assert recipe.compose == "predicted" and not recipe.uses_mask
    none = RECIPES["pix2pix"](TrainConfig(steps=1, recon_loss="masked-l1", compose="none").resolved("cpu"),
                              torch.device("cpu"))
    assert none.compose == "given" and none.uses_mask


def test_completion_without_local_discriminator_builds_none(tmp_path):
    result = train(tiny_config(tmp_path, "completion", local_weight=0.0, steps=2, size=32))
    state = load_checkpoint(result.checkpoint)
    assert "D_local" not in state["models"] and "D" in state["models"]
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert "g_local" not in recs[-1] and math.isfinite(recs[-1]["loss_g"])
