"""Training recipes, GAN losses, reconstruction losses and the SimGAN history buffer, on tiny
models and synthetic faces (CPU, eager)."""

import json
import math

import pytest
import torch

from fastgan.train import train

from train_config import SMALL_RECIPE_PARTS, tiny_config
from fastgan.train.gan_losses import GANLoss
from fastgan.train.history import HistoryBuffer
from fastgan.train.recipes import recon_loss
from fastgan.train.config import RECON_LOSSES


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(tmp_path, recipe="pix2pix", **kw):
    return tiny_config(tmp_path / recipe, recipe, **{**SMALL_RECIPE_PARTS, "steps": 4, "log_every": 1,
                                                     "synthetic_n": 16, "val_images": 8, **kw})


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("recipe,extra", [
    ("pix2pix", {}),
    ("mask-removal", {}),
    ("simgan", {}),
    ("completion", {}),
    ("vae", {"mask_head": True}),
])
def test_recipe_trains_with_finite_changing_losses(tmp_path, recipe, extra):
    cfg = tiny(tmp_path, recipe, **extra)
    result = train(cfg)
    recs = records(tmp_path / recipe)
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    keys = [k for k in recs[0] if k.startswith(("loss_", "d_", "g_"))]
    assert "loss_g" in keys and (recipe == "vae" or "loss_d" in keys)
    for k in keys:
        values = [r[k] for r in recs]
        assert all(math.isfinite(v) for v in values), (k, values)
    assert len({r["loss_g"] for r in recs}) > 1, "the generator loss never changed"
    assert result.step == 4 and result.checkpoint.exists()
    assert 0 < result.validation["val_ssim"] <= 1 and math.isfinite(result.validation["val_psnr"])
    assert result.sample is not None and result.sample.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipe_losses_reach_the_weights(tmp_path):
    """Both networks move: the D step and the G step each update their own parameters."""
    from fastgan.train.checkpoint import load_checkpoint

    # constant LR: a linear decay over a 2-step run would give the last step a rate of 0
    cfg = tiny(tmp_path, steps=1, save_every=1, lr_decay="none")
    first = load_checkpoint(train(cfg).checkpoint)
    cfg = tiny(tmp_path, steps=2, save_every=1, lr_decay="none", resume=True)
    second = load_checkpoint(train(cfg).checkpoint)
    for net in ("G", "D"):
        a, b = first["models"][net], second["models"][net]
        assert any(not torch.equal(a[k], b[k]) for k in a), f"{net} did not change"


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "hinge"])
def test_gan_losses(kind):
    loss = GANLoss(kind)
    hi, lo = {"vanilla": (5.0, -5.0), "lsgan": (1.0, 0.0), "hinge": (1.5, -1.5)}[kind]
    good_real, good_fake = torch.full((2, 1, 3, 3), hi), torch.full((2, 1, 3, 3), lo)
    r, f = loss.d(good_real, good_fake)
    r2, f2 = loss.d(good_fake, good_real)   # swapped: a discriminator that is always wrong
    assert r < r2 and f < f2       # a confident, correct discriminator has the lower loss
    assert loss.g(good_real) < loss.g(good_fake)  # the generator wants its fakes judged real
    if kind == "vanilla":
        x = torch.randn(4, 1, 2, 2)
        expected = torch.nn.BCEWithLogitsLoss()(x, torch.ones_like(x))
        torch.testing.assert_close(loss.g(x), expected)
    if kind == "hinge":
        assert loss.d(torch.full((1,), 2.0), torch.full((1,), -2.0)) == (0, 0)
    with pytest.raises(ValueError, match="kind"):
        GANLoss("wgan")


def test_gan_loss_option_is_used(tmp_path):
    vals = {}
    for kind in ("lsgan", "hinge"):
        recs = records_of(train(tiny(tmp_path / kind, steps=1, gan_loss=kind)))
        vals[kind] = recs[0]["g_gan"]
    assert vals["lsgan"] != vals["hinge"]


def records_of(result):
    return records(result.out)


@pytest.mark.parametrize("name", RECON_LOSSES)
def test_recon_losses(name):
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    x = (y + 0.3 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1).requires_grad_()
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 20:28, 20:28] = 1
    fn = recon_loss(name)
    loss = fn(x, y, mask)
    assert loss.item() > 0 and math.isfinite(loss.item())
    assert fn(y, y, mask).item() == pytest.approx(0, abs=1e-5)
    loss.backward()
    far = x.grad[..., :8, :]   # beyond the reach of an 11x11 SSIM window around the mask
    if name.startswith("masked-"):
        assert far.abs().max() == 0
    else:
        assert far.abs().max() > 0


def test_history_buffer_ring():
    h = HistoryBuffer(5, (1, 2, 2), fraction=0.5)
    batch = lambda v: torch.full((4, 1, 2, 2), float(v))  # noqa: E731
    assert h.n_history(4) == 2
    h.push(batch(1))
    assert int(h.count) == 2 and int(h.pos) == 2
    h.push(batch(2))
    h.push(batch(3))   # 6 writes into 5 slots: fills, then the oldest slot is overwritten
    assert int(h.count) == 5 and int(h.pos) == 1
    assert h.images[:, 0, 0, 0].tolist() == [3, 1, 2, 2, 3]


def test_history_buffer_mix_half_from_history():
    h = HistoryBuffer(8, (1, 2, 2), fraction=0.5)
    fakes = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    mixed = h.mix(fakes)     # empty: the history half is the current fakes
    assert torch.equal(mixed, fakes)
    h.push(torch.full((6, 1, 2, 2), -1.0))
    g = torch.Generator().manual_seed(0)
    mixed = h.mix(fakes, g)
    assert torch.equal(mixed[:3], fakes[:3])
    assert (mixed[3:] == -1).all()   # the other half comes from the history


def test_history_buffer_state_dict_round_trip():
    h = HistoryBuffer(4, (3, 2, 2))
    h.push(torch.rand(6, 3, 2, 2))
    state = h.state_dict()
    h2 = HistoryBuffer(4, (3, 2, 2))
    h2.load_state_dict(state)
    assert torch.equal(h2.images, h.images) and int(h2.count) == 3 and int(h2.pos) == 3
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 2, 2)
    assert torch.equal(h.mix(x, g1), h2.mix(x, g2))
    with pytest.raises(ValueError, match="do not fit"):
        HistoryBuffer(3, (3, 2, 2)).load_state_dict(state)


def test_simgan_history_fills_during_training(tmp_path):
    from fastgan.train.checkpoint import load_checkpoint

    result = train(tiny(tmp_path, "simgan", steps=4, history_size=6))
    hist = load_checkpoint(result.checkpoint)["extra"]["history"]
    assert int(hist["count"]) == 6          # 4 steps x 2 images > 6 slots: full, wrapped
    assert int(hist["pos"]) == 8 % 6
    assert hist["images"].abs().sum(dim=(1, 2, 3)).min() > 0   # every slot written


@pytest.mark.parametrize("transposed,side", [(False, 4), (False, 2), (True, 1), (True, 2), (False, 16), (True, 8)])
def test_gemm_small_convs_equal_the_convolutions(transposed, side):
    """The CPU GEMM form of small convolutions computes the same function and gradients."""
    import copy
    from torch import nn
    from fastgan.train.cpu_convs import GemmConv2d, GemmConvTranspose2d, use_gemm_for_small_convs

    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(16, 8, 4, 2, 1) if transposed else nn.Conv2d(16, 8, 4, 2, 1)
    fast = use_gemm_for_small_convs(copy.deepcopy(nn.Sequential(ref)))[0]
    assert type(fast) is (GemmConvTranspose2d if transposed else GemmConv2d)
    x = torch.randn(3, 16, side, side)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ref(x1), fast(x2)
    torch.testing.assert_close(y2, y1, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    assert set(fast.state_dict()) == set(ref.state_dict())


def test_completion_with_the_parsing_regulariser(tmp_path):
    """A frozen face parser from a torch.export file adds a parsing loss to the G step."""
    parser = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    path = tmp_path / "parser.pt2"
    exported = torch.export.export(parser, (torch.rand(2, 3, 32, 32),), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(exported, path)
    result = train(tiny(tmp_path, "completion", steps=2, parsing_model=str(path), parsing_weight=0.5))
    recs = records(tmp_path / "completion")
    assert all(math.isfinite(r["g_parsing"]) and r["g_parsing"] > 0 for r in recs)
    from fastgan.train.checkpoint import load_checkpoint
    assert "parsing" not in load_checkpoint(result.checkpoint)["models"]    # frozen: not saved
