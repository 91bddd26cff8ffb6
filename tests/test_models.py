"""fastgan.models: shapes at two sizes and both memory layouts, every norm, dropout, the
pix2pix parameter counts and receptive field, init, the mask crop, the semantic
regulariser, the VAE and the registry. Tiny widths keep the file fast on 2 CPU cores."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fastgan.models import (MODELS, CompletionGenerator, FaceVAE, GlobalDiscriminator,
                            LocalDiscriminator, PatchGANDiscriminator, SemanticRegularizer,
                            SimGANDiscriminator, SimGANRefiner, UNetGenerator, VAEOutput,
                            build_model, count_parameters, crop_around_mask, init_weights,
                            kl_divergence, unet_64, unet_128, unet_256)
from fastgan.nn import InstanceNormAct

NORMS = ("instance", "batch", "none")

# Counted on junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py (UnetGenerator,
# NLayerDiscriminator; ngf = ndf = 64, 3 -> 3 channels, PatchGAN input 6) with
# sum(p.numel() for p in net.parameters()); they also follow by hand from the layer list.
PIX2PIX_COUNTS = {
    "batch": {"unet_64": 29_244_035, "unet_128": 41_828_995, "unet_256": 54_413_955,
              "patchgan": 2_768_705},
    "instance": {"unet_64": 29_241_731, "unet_128": 41_825_667, "unet_256": 54_409_603,
                 "patchgan": 2_767_809},
}


def _rand(*shape):
    return torch.rand(*shape) * 2 - 1


def _mask(n, h, w, box=(0.25, 0.75)):
    m = torch.zeros(n, 1, h, w)
    a, b = int(h * box[0]), int(h * box[1])
    c, d = int(w * box[0]), int(w * box[1])
    m[..., a:b, c:d] = 1
    return m


# name -> (constructor(norm), inputs(size), expected output shape(size)); two sizes each
CASES = {
    "unet_64": (lambda norm: unet_64(ngf=4, norm=norm), [(64, 64), (128, 64)],
                lambda n, h, w: [_rand(n, 3, h, w)], lambda n, h, w: (n, 3, h, w)),
    "unet_128": (lambda norm: unet_128(1, 2, ngf=2, norm=norm), [(128, 128), (256, 128)],
                 lambda n, h, w: [_rand(n, 1, h, w)], lambda n, h, w: (n, 2, h, w)),
    "unet_256": (lambda norm: unet_256(ngf=2, norm=norm), [(256, 256), (256, 512)],
                 lambda n, h, w: [_rand(n, 3, h, w)], lambda n, h, w: (n, 3, h, w)),
    "patchgan": (lambda norm: PatchGANDiscriminator(6, ndf=4, norm=norm), [(64, 64), (256, 256)],
                 lambda n, h, w: [_rand(n, 6, h, w)], lambda n, h, w: (n, 1, h // 8 - 2, w // 8 - 2)),
    "simgan_refiner": (lambda norm: SimGANRefiner(channels=8, n_blocks=2, norm=norm),
                       [(32, 32), (35, 55)], lambda n, h, w: [_rand(n, 3, h, w)],
                       lambda n, h, w: (n, 3, h, w)),
    "simgan_discriminator": (lambda norm: SimGANDiscriminator(channels=8, norm=norm),
                             [(32, 32), (35, 55)], lambda n, h, w: [_rand(n, 3, h, w)],
                             lambda n, h, w: (n, 1, math.ceil(h / 4), math.ceil(w / 4))),
    "completion_generator": (lambda norm: CompletionGenerator(channels=4, norm=norm),
                             [(32, 32), (64, 48)],
                             lambda n, h, w: [_rand(n, 3, h, w), _mask(n, h, w)],
                             lambda n, h, w: (n, 3, h, w)),
    "global_discriminator": (lambda norm: GlobalDiscriminator(size=32, channels=4, norm=norm),
                             [(32, 32)], lambda n, h, w: [_rand(n, 3, h, w)], lambda n, h, w: (n, 1)),
    "global_discriminator_128": (lambda norm: GlobalDiscriminator(size=128, channels=2, norm=norm),
                                 [(128, 128)], lambda n, h, w: [_rand(n, 3, h, w)],
                                 lambda n, h, w: (n, 1)),
    "local_discriminator": (lambda norm: LocalDiscriminator(size=16, channels=4, norm=norm),
                            [(16, 16)], lambda n, h, w: [_rand(n, 3, h, w)], lambda n, h, w: (n, 1)),
    "local_discriminator_64": (lambda norm: LocalDiscriminator(size=64, channels=4, norm=norm),
                               [(64, 64)], lambda n, h, w: [_rand(n, 3, h, w)],
                               lambda n, h, w: (n, 1)),
    "vae_32": (lambda norm: FaceVAE(size=32, latent_dim=8, channels=4, mask_head=True, norm=norm),
               [(32, 32)], lambda n, h, w: [_rand(n, 3, h, w)], lambda n, h, w: (n, 3, h, w)),
    "vae_64": (lambda norm: FaceVAE(size=64, latent_dim=8, channels=4, norm=norm),
               [(64, 64)], lambda n, h, w: [_rand(n, 3, h, w)], lambda n, h, w: (n, 3, h, w)),
}


def _first(out):
    return out.recon if isinstance(out, VAEOutput) else out


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", list(CASES))
def test_shapes_layouts_backward(name, norm):
    make, sizes, inputs, expected = CASES[name]
    torch.manual_seed(0)
    model = init_weights(make(norm)).train()
    for k, (h, w) in enumerate(sizes):
        xs = inputs(2, h, w)
        torch.manual_seed(1)
        out = model(*xs)
        assert _first(out).shape == expected(2, h, w)
        torch.manual_seed(1)
        out_cl = model(*[x.contiguous(memory_format=torch.channels_last) for x in xs])
        torch.testing.assert_close(_first(out_cl), _first(out), rtol=1e-4, atol=1e-5)
        if k == 0:   # one backward per model and norm: every gradient exists and is finite
            xs[0].requires_grad_(True)
            out = model(*xs)
            loss = _first(out).square().mean()
            if isinstance(out, VAEOutput):
                loss = loss + kl_divergence(out.mu, out.logvar)
                if out.mask_logits is not None:
                    loss = loss + out.mask_logits.mean()
            loss.backward()
            assert torch.isfinite(xs[0].grad).all()
            for pname, p in model.named_parameters():
                assert p.grad is not None, pname
                assert torch.isfinite(p.grad).all(), pname
        if "generator" in name or name.startswith(("unet", "simgan_refiner", "vae")):
            assert _first(out).abs().max() <= 1   # tanh: [-1, 1] like the inputs


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_parameter_counts_equal_pix2pix(norm):
    ref = PIX2PIX_COUNTS[norm]
    for name, make in (("unet_64", unet_64), ("unet_128", unet_128), ("unet_256", unet_256)):
        assert count_parameters(make(3, 3, norm=norm)) == ref[name], name
    assert count_parameters(PatchGANDiscriminator(6, n_layers=3, norm=norm)) == ref["patchgan"]
    assert count_parameters(build_model("unet_256", norm=norm, init=False)) == ref["unet_256"]


def test_patchgan_receptive_field_is_70():
    d = PatchGANDiscriminator(3, ndf=2, norm="none")
    assert d.receptive_field == 70
    # the gradient footprint of one interior logit on the input is exactly 70 x 70
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    y = d(x)
    assert y.shape == (1, 1, 14, 14)
    y[0, 0, 7, 7].backward()
    hit = x.grad.abs().sum((0, 1)) > 0
    rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    assert PatchGANDiscriminator(3, n_layers=2).receptive_field == 34
    assert PatchGANDiscriminator(3, n_layers=4).receptive_field == 142


@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_patchgan_n_layers(n_layers):
    d = PatchGANDiscriminator(6, ndf=2, n_layers=n_layers)
    side = 128 // 2 ** n_layers - 2
    assert d(torch.randn(2, 6, 128, 128)).shape == (2, 1, side, side)
    # widths double up to 8 * ndf
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [2 * min(2 ** i, 8) for i in range(n_layers + 1)] + [1]


def test_unet_structure_follows_pix2pix():
    g = unet_256(ngf=2, norm="instance")
    # outermost and innermost downs have no norm; the six others are instance norm
    assert isinstance(g.downs[0].norm, nn.Identity) and isinstance(g.downs[-1].norm, nn.Identity)
    norms = [m for m in g.modules() if isinstance(m, InstanceNormAct)]
    assert len(norms) == 6 + 7 and not any(n.affine for n in norms)
    assert g.downs[0].conv.bias is not None   # bias before instance norm, as pix2pix
    b = unet_256(ngf=2, norm="batch")
    assert b.downs[1].conv.bias is None and isinstance(b.downs[1].norm, nn.BatchNorm2d)
    assert isinstance(g.ups[0][-1], nn.Tanh)
    n = unet_256(ngf=2, norm="none")
    assert not any(isinstance(m, (InstanceNormAct, nn.BatchNorm2d)) for m in n.modules())


@pytest.mark.parametrize("make,expected", [(unet_256, 3), (unet_128, 2), (unet_64, 1)])
def test_unet_dropout(make, expected):
    torch.manual_seed(0)
    g = make(ngf=2, dropout=True)
    assert sum(isinstance(m, nn.Dropout) and m.p == 0.5 for m in g.modules()) == expected
    assert not any(isinstance(m, nn.Dropout) for m in make(ngf=2).modules())
    side = 2 ** g.num_downs
    x = _rand(1, 3, side, side)
    g.train()
    assert not torch.equal(g(x), g(x))   # dropout is the noise source
    g.eval()
    assert torch.equal(g(x), g(x))
    plain = make(ngf=2).train()
    assert torch.equal(plain(x), plain(x))


def test_unet_bad_sizes():
    g = unet_64(ngf=2)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*num_downs = 64"):
        g(torch.randn(1, 3, 96, 64))
    with pytest.raises(ValueError, match="3 channels"):
        g(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match="4-D"):
        g(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match="num_downs"):
        UNetGenerator(num_downs=1)


@pytest.mark.parametrize("ctor", [UNetGenerator, PatchGANDiscriminator, SimGANRefiner,
                                  SimGANDiscriminator, CompletionGenerator, GlobalDiscriminator,
                                  LocalDiscriminator, FaceVAE])
def test_bad_norm(ctor):
    with pytest.raises(ValueError, match="norm must be one of 'instance', 'batch', 'none'"):
        ctor(norm="layer")


def test_completion_generator_ignores_occluded_pixels_and_checks_sizes():
    torch.manual_seed(0)
    g = CompletionGenerator(channels=4).eval()
    x, m = _rand(1, 3, 32, 32), _mask(1, 32, 32)
    other = torch.where(m.bool(), _rand(1, 3, 32, 32), x)   # different occluder, same context
    torch.testing.assert_close(g(x, m), g(other, m))
    dilated = [mod for mod in g.modules() if isinstance(mod, nn.Conv2d) and mod.dilation != (1, 1)]
    assert [mod.dilation[0] for mod in dilated] == [2, 4, 8, 16]
    for h, w in ((28, 32), (34, 32)):
        with pytest.raises(ValueError, match="divisible by 4 and at least 32"):
            g(_rand(1, 3, h, w), _mask(1, h, w))
    with pytest.raises(ValueError, match="mask"):
        g(x, _mask(2, 32, 32))


def test_discriminators_check_size():
    with pytest.raises(ValueError, match="32x32"):
        GlobalDiscriminator(size=32, channels=2)(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="size"):
        LocalDiscriminator(size=4)


def _crop_reference(images, mask, size):
    out = []
    for img, m in zip(images, mask):
        h, w = img.shape[-2:]
        ys, xs = m.sum(0).nonzero(as_tuple=True)
        if len(ys):
            cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
        else:
            cy, cx = h / 2, w / 2
        top = int(min(max(math.floor(cy - size / 2), 0), h - size))
        left = int(min(max(math.floor(cx - size / 2), 0), w - size))
        out.append(img[:, top:top + size, left:left + size])
    return torch.stack(out)


def test_crop_around_mask():
    h, w, size = 40, 48, 16
    images = torch.randn(6, 3, h, w)
    mask = torch.zeros(6, 1, h, w)
    mask[0, :, 10:20, 12:22] = 1          # interior box
    mask[1, :, 0:5, 0:4] = 1              # top-left corner: clamped
    mask[2, :, 35:40, 40:48] = 1          # bottom-right corner: clamped
    mask[3, :, 7, 30] = 1                 # one pixel
    mask[4, :, 5:9, 5:9] = 1
    mask[4, :, 14:18, 14:18] = 1          # two blobs: centre of the joint box
    crop = crop_around_mask(images, mask, size)
    assert crop.shape == (6, 3, size, size)
    torch.testing.assert_close(crop, _crop_reference(images, mask, size), rtol=0, atol=0)
    # the crop holds the whole mask (boxes smaller than the crop); all-zero mask: centre crop
    mcrop = crop_around_mask(mask, mask, size)
    assert torch.equal(mcrop.sum((1, 2, 3)), mask.sum((1, 2, 3)))
    torch.testing.assert_close(crop[5], images[5, :, 12:28, 16:32], rtol=0, atol=0)
    # bool mask, C-channel mask and channels_last images give the same crop
    torch.testing.assert_close(crop_around_mask(images, mask.bool(), size), crop)
    torch.testing.assert_close(crop_around_mask(images, mask.expand(6, 3, h, w), size), crop)
    torch.testing.assert_close(
        crop_around_mask(images.contiguous(memory_format=torch.channels_last), mask, size), crop)
    # exact gradients: ones inside the window, zeros elsewhere
    x = images.clone().requires_grad_(True)
    crop_around_mask(x, mask, size).sum().backward()
    assert torch.equal(x.grad.sum((1, 2, 3)), torch.full((6,), 3.0 * size * size))
    assert set(x.grad.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="size"):
        crop_around_mask(images, mask, 41)
    with pytest.raises(ValueError, match="mask"):
        crop_around_mask(images, mask[:, :, :-1], size)


def test_crop_around_mask_compiles_fullgraph():
    torch._dynamo.reset()
    images, mask = torch.randn(2, 3, 24, 24), _mask(2, 24, 24, (0.1, 0.4))
    mask[1] = 0
    compiled = torch.compile(crop_around_mask, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(images, mask, 8), crop_around_mask(images, mask, 8))


class _TinyParser(nn.Module):
    def __init__(self, k=5):
        super().__init__()
        self.conv = nn.Conv2d(3, k, 3, padding=1)
        self.bn = nn.BatchNorm2d(k)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.bn(self.conv(x)))


def test_semantic_regularizer():
    torch.manual_seed(0)
    parser = _TinyParser()
    reg = SemanticRegularizer(parser, weight=0.5)
    reg.train()
    assert not parser.training and not parser.drop.training
    assert all(not p.requires_grad for p in parser.parameters())
    assert count_parameters(reg) == 0
    before = parser.conv.weight.clone()
    init_weights(nn.ModuleDict({"g": nn.Conv2d(3, 3, 1), "reg": reg}))
    assert torch.equal(parser.conv.weight, before)   # init leaves the pretrained parser alone
    out = _rand(2, 3, 16, 16).requires_grad_(True)
    target = _rand(2, 3, 16, 16)
    loss = reg(out, target)
    assert loss.dim() == 0
    with torch.no_grad():
        expected = 0.5 * F.cross_entropy(parser(out), parser(target).argmax(1))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert out.grad is not None and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    assert all(p.grad is None for p in parser.parameters())
    # a parse of a face against its own labels is the smallest loss there is for that face
    assert reg(target, target) < loss
    with pytest.raises(ValueError, match="parsing_net must return"):
        SemanticRegularizer(nn.Flatten())(out, target)
    with pytest.raises(TypeError, match="nn.Module"):
        SemanticRegularizer(lambda x: x)


def test_vae():
    torch.manual_seed(0)
    vae = build_model("vae", size=32, latent_dim=6, channels=4, mask_head=True)
    x = _rand(3, 3, 32, 32)
    out = vae(x)
    assert isinstance(out, VAEOutput)
    assert out.recon.shape == x.shape and out.mask_logits.shape == (3, 1, 32, 32)
    assert out.mu.shape == out.logvar.shape == (3, 6)
    mu, logvar = vae.encode(x)
    torch.testing.assert_close(mu, out.mu)
    assert vae.decode(torch.randn(4, 6)).shape == (4, 3, 32, 32)
    torch.manual_seed(5)
    a = vae(x).recon
    torch.manual_seed(5)
    torch.testing.assert_close(vae(x).recon, a)          # randn_like follows the seed
    vae.eval()
    e = vae(x)
    torch.testing.assert_close(e.recon, vae.decode(e.mu))  # eval: z = mu
    assert FaceVAE(size=32, channels=4).eval()(x).mask_logits is None
    with pytest.raises(ValueError, match="size must be 4 \\* 2\\*\\*k"):
        FaceVAE(size=48)
    with pytest.raises(ValueError, match="32x32"):
        vae(_rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="latent_dim=6"):
        vae.decode(torch.randn(2, 5))


def test_kl_divergence():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 7), torch.randn(4, 7)
    closed = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()),
        torch.distributions.Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_divergence(mu, logvar, reduction="none"), closed)
    torch.testing.assert_close(kl_divergence(mu, logvar), closed.mean())
    torch.testing.assert_close(kl_divergence(mu, logvar, reduction="sum"), closed.sum())
    assert kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3)) == 0
    with pytest.raises(ValueError, match="reduction"):
        kl_divergence(mu, logvar, reduction="avg")
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(mu, logvar[:, :3])


def test_init_weights_statistics():
    torch.manual_seed(0)
    g = build_model("unet_64", ngf=16, norm="batch")
    w = torch.cat([m.weight.flatten() for m in g.modules()
                   if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    assert all(m.bias is None or not m.bias.any() for m in g.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    bn = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    g_w = torch.cat([m.weight for m in bn])
    assert abs(g_w.mean().item() - 1) < 0.005 and abs(g_w.std().item() - 0.02) < 0.005
    assert not torch.cat([m.bias for m in bn]).any()
    # affine fused instance norm and linear layers are covered too
    seq = init_weights(nn.Sequential(nn.Linear(400, 300), InstanceNormAct(500, affine=True)), gain=0.05)
    assert abs(seq[0].weight.std().item() - 0.05) < 0.002 and not seq[0].bias.any()
    assert abs(seq[1].weight.mean().item() - 1) < 0.01 and abs(seq[1].weight.std().item() - 0.05) < 0.01
    for kind in ("xavier", "kaiming", "orthogonal"):
        conv = init_weights(nn.Conv2d(8, 8, 3), kind)
        assert torch.isfinite(conv.weight).all() and not conv.bias.any()
    with pytest.raises(ValueError, match="init_type"):
        init_weights(g, "uniform")


def test_build_model_registry():
    assert set(MODELS) == {"unet_64", "unet_128", "unet_256", "patchgan", "simgan_refiner",
                           "simgan_discriminator", "completion_generator", "global_discriminator",
                           "local_discriminator", "vae"}
    small = {"unet_64": dict(ngf=2), "unet_128": dict(ngf=2), "unet_256": dict(ngf=2),
             "patchgan": dict(ndf=2), "simgan_refiner": dict(channels=2),
             "simgan_discriminator": dict(channels=2), "completion_generator": dict(channels=2),
             "global_discriminator": dict(channels=2), "local_discriminator": dict(channels=2),
             "vae": dict(channels=2)}
    for name, kw in small.items():
        torch.manual_seed(0)
        m = build_model(name, **kw)
        assert isinstance(m, nn.Module) and count_parameters(m) > 0
        conv = next(c for c in m.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d)))
        assert conv.weight.std() < 0.05   # N(0, 0.02), not PyTorch's default
    with pytest.raises(ValueError, match="unknown model 'unet_512'.*unet_64.*vae"):
        build_model("unet_512")
    raw = build_model("patchgan", ndf=2, init=False)
    assert raw.model[0].conv.bias.any()  # PyTorch's default init; init_weights zeroes biases
    assert not build_model("patchgan", ndf=2).model[0].conv.bias.any()
    raw.model[0].conv.weight.requires_grad_(False)
    frozen = raw.model[0].conv.weight.numel()
    assert count_parameters(raw) + frozen == count_parameters(raw, trainable_only=False)


def test_unet_traces_without_graph_breaks():
    torch._dynamo.reset()
    g = unet_64(ngf=2).eval()
    explain = torch._dynamo.explain(g)(torch.randn(1, 3, 64, 64))
    assert explain.graph_break_count == 0
