"""``fastgan demo``: a short real training (pix2pix on nose-mask occlusions of the built-in
synthetic faces, or of ``--data DIR``) that ends with the held-out SSIM / PSNR and the path of
a sample grid; minutes on a CPU, seconds on a GPU. ``fastgan demo --losses`` runs the older
check of the fused losses against the plain-PyTorch reference instead."""

from __future__ import annotations

import time
from pathlib import Path

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


DEMO_MARKER = ".fastgan-demo"   # in every folder the demo trains in: only those does it clear


def _start_over(out) -> None:
    """A demo starts over: it removes the checkpoints of an earlier demo in ``out``, and
    refuses a folder that holds any other run (a user's run is never deleted)."""
    import shutil

    marker = out / DEMO_MARKER
    if (out / "checkpoints").exists():
        if not marker.is_file():
            raise ValueError(f"{out} holds a training run that the demo did not write; nothing was "
                             "removed: give the demo another --out")
        shutil.rmtree(out / "checkpoints")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by fastgan demo: the next demo in this folder replaces its checkpoints\n")


def run_training_demo(data: str = "synthetic", out: str = "runs/demo", steps: int | None = None,
                      minutes: float | None = None, size: int | None = None, batch: int | None = None,
                      width: int | None = None, compile: bool | None = None, seed: int = 0) -> int:
    """Train pix2pix briefly and print the held-out SSIM / PSNR and the sample grid's path."""
    from fastgan.train import TrainConfig, train

    gpu = torch.cuda.is_available()
    if steps is None and minutes is None:
        steps = 1500 if gpu else 600
    _start_over(Path(out))
    width = width or (64 if gpu else 32)
    cfg = TrainConfig(recipe="pix2pix", data=data, size=size or (128 if gpu else 64), batch=batch or (32 if gpu else 16),
                      steps=steps, minutes=minutes, occlusion="nose-mask", out=out, seed=seed,
                      ngf=width, ndf=width, log_every=25, save_every=100000, val_every=100000,
                      val_images=256, compile=gpu if compile is None else compile,
                      synthetic_n=2048 if gpu else 1024)
    result = train(cfg)
    v = result.validation
    occ = (f" (occluded region {v['val_ssim_occluded']:.3f})" if "val_ssim_occluded" in v else "")
    occ_p = (f" (occluded region {v['val_psnr_occluded']:.2f} dB)" if "val_psnr_occluded" in v else "")
    print(f"held-out SSIM {v['val_ssim']:.3f}{occ}, PSNR {v['val_psnr']:.2f} dB{occ_p} "
          f"on {v['val_images']} images after {result.step} steps ({result.img_per_s:.1f} img/s)")
    print(f"sample grid: {result.sample}  (rows: occluded | output | target)")
    print(f"checkpoint: {result.checkpoint}  (fastgan infer {result.checkpoint} IN_DIR OUT_DIR)")
    return 0
