"""Training throughput: one pix2pix step (U-Net + 70x70 PatchGAN, GAN + 100 * L1) in img/s.

impls (group "train pix2pix unet_64 64x64 b16" on the CPU; "... unet_256 256x256 b16" on a GPU):
- fastgan: the trainer's own step (``fastgan.train.loop.Trainer``) with its defaults for the
  device: fused InstanceNorm + activation and losses, fused Adam, real and fake pairs through D
  in one batch; on a GPU also torch.compile of the generate / D / G functions, channels_last
  and bf16 autocast; on the CPU eager NCHW (measured faster there, see fastgan-compiled) with
  the innermost convolutions as GEMMs (``fastgan.train.cpu_convs``).
- fastgan-compiled (CPU) / fastgan-eager (GPU): the same step with compile toggled.
- baseline: what the pix2pix reference code does, written with plain PyTorch modules
  (nn.Conv2d / ConvTranspose2d / InstanceNorm2d / LeakyReLU / ReLU / Tanh, nn.BCEWithLogitsLoss,
  nn.L1Loss, Adam(lr 2e-4, betas (0.5, 0.999)) with its defaults), eager fp32, NCHW, the
  reference's order: G forward once, D on fake.detach() then on the real pair, D step, then
  D (frozen) on the fake again for the G step. Same architecture and parameter count.

Both get the same fixed batch already on the device (the loader is measured in
bench/test_bench_loader.py). img/s per entry: bench/results/<device>-latest.json ("img_per_s").
Run: python -m pytest bench/test_bench_train.py --benchmark-only
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import synchronized

GPU = torch.cuda.is_available()
SIZE, NUM_DOWNS, BATCH = (256, 8, 16) if GPU else (64, 6, 16)
GROUP = f"train pix2pix unet_{SIZE} {SIZE}x{SIZE} b{BATCH}"


# ---------------------------------------------------------------- the plain-PyTorch baseline

class UnetBlock(nn.Module):
    """pix2pix's UnetSkipConnectionBlock with InstanceNorm2d (affine=False, conv bias on)."""

    def __init__(self, outer, inner, in_ch=None, sub=None, outermost=False, innermost=False):
        super().__init__()
        self.outermost = outermost
        in_ch = in_ch or outer
        down = nn.Conv2d(in_ch, inner, 4, 2, 1, bias=True)
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=True), nn.InstanceNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nn.InstanceNorm2d(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=True), nn.InstanceNorm2d(outer)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def baseline_unet(num_downs: int, ngf: int = 64) -> nn.Module:
    block = UnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = UnetBlock(ngf * 8, ngf * 8, sub=block)
    block = UnetBlock(ngf * 4, ngf * 8, sub=block)
    block = UnetBlock(ngf * 2, ngf * 4, sub=block)
    block = UnetBlock(ngf, ngf * 2, sub=block)
    return UnetBlock(3, ngf, in_ch=3, sub=block, outermost=True)


def baseline_patchgan(in_ch: int = 6, ndf: int = 64, n_layers: int = 3) -> nn.Module:
    layers = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=True), nn.InstanceNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=True), nn.InstanceNorm2d(ndf * mult),
               nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*layers)


class BaselinePix2Pix:
    def __init__(self, device):
        self.G = baseline_unet(NUM_DOWNS).to(device)
        self.D = baseline_patchgan().to(device)
        for m in (self.G, self.D):   # pix2pix init: N(0, 0.02)
            for p in m.modules():
                if isinstance(p, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.normal_(p.weight, 0.0, 0.02)
                    nn.init.zeros_(p.bias)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.gan, self.l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    @staticmethod
    def _requires_grad(net, flag):
        for p in net.parameters():
            p.requires_grad = flag

    def step(self, real_a, real_b):
        fake_b = self.G(real_a)
        self._requires_grad(self.D, True)
        self.opt_d.zero_grad()
        pred_fake = self.D(torch.cat([real_a, fake_b.detach()], 1))
        loss_d_fake = self.gan(pred_fake, torch.zeros_like(pred_fake))
        pred_real = self.D(torch.cat([real_a, real_b], 1))
        loss_d_real = self.gan(pred_real, torch.ones_like(pred_real))
        loss_d = (loss_d_fake + loss_d_real) * 0.5
        loss_d.backward()
        self.opt_d.step()
        self._requires_grad(self.D, False)
        self.opt_g.zero_grad()
        pred_fake = self.D(torch.cat([real_a, fake_b], 1))
        loss_g = self.gan(pred_fake, torch.ones_like(pred_fake)) + self.l1(fake_b, real_b) * 100.0
        loss_g.backward()
        self.opt_g.step()
        return loss_g.detach()


# ---------------------------------------------------------------- fastgan's trainer step

def fastgan_trainer(tmp_path, device, compiled: bool | None = None):
    from fastgan.train import TrainConfig
    from fastgan.train.loop import Trainer

    cfg = TrainConfig(recipe="pix2pix", data="synthetic", size=SIZE, batch=BATCH, steps=10 ** 6,
                      out=str(tmp_path / f"run-{compiled}"), workers=0, synthetic_n=BATCH,
                      val_images=BATCH, samples=0, compile=compiled, progress=False, device=device)
    t = Trainer(cfg)
    t._setup()
    t._requires_grad(t.d_params, False)
    batch = next(iter(t.train_loader))

    def step():
        t._accumulate(t._train_step(batch))
        t.step += 1

    return t, batch, step


def _warm(fn, n=3):
    for _ in range(n):
        fn()


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("impl", ["fastgan", "fastgan-eager" if GPU else "fastgan-compiled", "baseline"])
def test_train_step(benchmark, tmp_path, device, impl):
    from fastgan.models import count_parameters

    if impl == "baseline":
        torch.manual_seed(0)
        base = BaselinePix2Pix(device)
        _, batch, _ = fastgan_trainer(tmp_path, device, False)
        a = (batch["occluded"] * 2 - 1).contiguous()
        b = (batch["image"] * 2 - 1).contiguous()
        fn = lambda: base.step(a, b)  # noqa: E731
        params = count_parameters(base.G) + count_parameters(base.D)
    else:
        toggled = {"fastgan": None, "fastgan-eager": False, "fastgan-compiled": True}[impl]
        t, _, fn = fastgan_trainer(tmp_path, device, toggled)
        params = sum(count_parameters(m, trainable_only=False) for m in t.recipe.nets.values())
    run = synchronized(fn, device)
    _warm(run)
    benchmark.pedantic(run, rounds=8 if device == "cpu" else 20, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(impl=impl, params=params, img_per_s=BATCH / median)
    if impl == "baseline":  # the work both steps share: what bounds any speed-up
        gflop = _step_gflop(fn)
        benchmark.extra_info.update(gflop_per_step=gflop, gflop_per_s=gflop / median)


def _step_gflop(step) -> float:
    """Convolution and matmul FLOPs of one training step (forward and backward), counted by
    torch.utils.flop_counter: the arithmetic that bounds what any implementation can save."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9
