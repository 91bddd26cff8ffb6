"""``fastgan demo``: the fused losses on built-in synthetic faces with nose-mask
occlusions, checked against the plain-PyTorch reference and timed forward + backward on
both. (The training issue replaces this with a short real training.)"""

from __future__ import annotations

import time

import torch

import fastgan as fg
from fastgan import reference
from fastgan.data.occlusion import occlude
from fastgan.data.synthetic import render_faces


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


def run_loss_demo(batch: int = 16, size: int = 256, repeats: int = 5, seed: int = 0) -> int:
    info = fg.build_info()
    print(f"fastgan {info['version']} | torch {info['torch']} | compiled CPU kernels: "
          f"{info['cpu_kernels']} | CUDA kernels: {info['cuda_kernels']} | threads: {info['cpu_threads']}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    faces, landmarks = render_faces(batch, size, seed)
    _, mask = occlude(faces, "nose-mask", landmarks=landmarks, seed=seed)
    target, mask = faces.to(device), mask.to(device)
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
