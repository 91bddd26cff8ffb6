"""``fastgan demo``: the fused losses on built-in synthetic faces, checked against the
plain-PyTorch reference and timed forward + backward on both."""

from __future__ import annotations

import time

import torch

import fastgan as fg
from fastgan import reference


def synthetic_faces(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Simple deterministic face-like images in [0, 1], (n, 3, size, size): a background
    gradient, a skin-toned head ellipse, eyes and a mouth, each varied per image."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    xx, yy = xx.expand(n, 1, size, size), yy.expand(n, 1, size, size)
    background = r(n, 3, 1, 1) * 0.5 + 0.25 * (yy + 1) / 2
    skin = torch.tensor([0.85, 0.65, 0.5]).view(1, 3, 1, 1) * (0.6 + 0.4 * r(n, 1, 1, 1))
    head = ((xx / (0.55 + 0.1 * r(n, 1, 1, 1))) ** 2 + (yy / 0.75) ** 2 < 1).float()
    shading = 1 - 0.25 * (xx - 0.3 * (r(n, 1, 1, 1) - 0.5)).clamp(-1, 1) ** 2
    img = background * (1 - head) + skin * shading * head
    eye_y = -0.15 + 0.1 * (r(n, 1, 1, 1) - 0.5)
    for side in (-1, 1):
        eye = ((xx - side * 0.22) ** 2 / 0.01 + (yy - eye_y) ** 2 / 0.003 < 1).float()
        img = img * (1 - eye) + 0.1 * eye
    mouth = ((xx / 0.2) ** 2 + ((yy - 0.4) / 0.05) ** 2 < 1).float()
    img = img * (1 - mouth) + torch.tensor([0.6, 0.2, 0.2]).view(1, 3, 1, 1) * mouth
    return img.clamp(0, 1).contiguous()


def nose_mouth_mask(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """A (n, 1, size, size) binary mask over the lower face, jittered per image."""
    g = torch.Generator().manual_seed(seed + 1)
    top = (size * (0.5 + 0.1 * torch.rand(n, generator=g))).long()
    rows = torch.arange(size).view(1, size, 1)
    cols = torch.arange(size).view(1, 1, size)
    m = (rows >= top.view(n, 1, 1)) & (rows < int(size * 0.9)) & (cols > size // 5) & (cols < size - size // 5)
    return m.unsqueeze(1).float()


def _time_fwd_bwd(fn, x, y, mask, repeats: int) -> tuple[float, torch.Tensor]:
    loss = fn(x, y, mask)
    loss.backward()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        x.grad = None
        start = time.perf_counter()
        loss = fn(x, y, mask)
        loss.backward()
        best = min(best, time.perf_counter() - start)
    return best, loss.detach()


def run_loss_demo(batch: int = 8, size: int = 128, repeats: int = 5, seed: int = 0) -> int:
    info = fg.build_info()
    print(f"fastgan {info['version']} | torch {info['torch']} | compiled CPU kernels: "
          f"{info['cpu_kernels']} | CUDA kernels: {info['cuda_kernels']} | threads: {info['cpu_threads']}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    target = synthetic_faces(batch, size, seed).to(device)
    mask = nose_mouth_mask(batch, size, seed).to(device)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(seed + 2)).to(device)
    output = (target + 0.2 * noise * mask + 0.02 * noise).requires_grad_(True)
    print(f"batch {tuple(target.shape)} on {device}, occluded fraction {mask.mean().item():.3f}, "
          f"fwd+bwd best of {repeats}\n")
    cases = [
        ("masked_l1", fg.masked_l1, reference.masked_l1),
        ("masked_mse", fg.masked_mse, reference.masked_mse),
        ("masked_charbonnier", fg.masked_charbonnier, reference.masked_charbonnier),
        ("cosine_similarity_loss", fg.cosine_similarity_loss, reference.cosine_similarity_loss),
        ("self_regularization", lambda x, y, m: fg.self_regularization_loss(x, y),
         lambda x, y, m: reference.self_regularization_loss(x, y)),
    ]
    print(f"{'loss':<24}{'value':>12}{'reference':>12}{'fastgan ms':>12}{'ref ms':>10}{'speed-up':>10}")
    ok = True
    for name, fast, ref in cases:
        t_fast, v_fast = _time_fwd_bwd(fast, output, target, mask, repeats)
        g_fast = output.grad.clone()
        with fg.backend("reference"):
            t_ref, v_ref = _time_fwd_bwd(ref, output, target, mask, repeats)
        g_ref = output.grad
        match = torch.allclose(v_fast, v_ref, rtol=1e-4, atol=1e-6) and torch.allclose(
            g_fast, g_ref, rtol=1e-3, atol=1e-7)
        ok &= match
        print(f"{name:<24}{v_fast.item():>12.6f}{v_ref.item():>12.6f}{t_fast * 1e3:>12.2f}"
              f"{t_ref * 1e3:>10.2f}{t_ref / t_fast:>9.1f}x" + ("" if match else "  MISMATCH"))
    print("\nall losses match the reference" if ok else "\nMISMATCH against the reference")
    return 0 if ok else 1
