"""``fastgan eval``: the argument parser and the command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
modes:
  fastgan eval CHECKPOINT --data DIR [--occlusion KIND|all] --out DIR
      occlude the images of DIR with fixed-seed masks (default kind: the checkpoint's),
      reconstruct them with the checkpoint's generator and score the outputs
  fastgan eval --pred DIR --target DIR [--mask DIR] --out DIR
      score existing outputs against targets, paired by file name (masks: 255 = occluded)

outputs (under --out): metrics.json, per_image.csv, report.html (self-contained), plots/*.png,
examples_best.png, examples_worst.png.

FID/KID need pt_inception-2015-12-05-6726825d.pth (pytorch-fid's release; never downloaded):
--inception-weights PATH, or FASTGAN_INCEPTION_WEIGHTS, or torch hub's checkpoints folder.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def add_parsers(sub) -> None:
    """Add the ``eval`` subcommand to the ``fastgan`` subparsers."""
    from fastgan.data.occlusion import KINDS

    p = sub.add_parser("eval", help="score reconstructions: SSIM/PSNR (full and masked), FID/KID, LPIPS, "
                                    "face-detection rate, per occlusion kind and mask area; HTML report",
                       description="Score face reconstructions, overall, per occlusion kind and per "
                                   "occluded-area bin, and write metrics.json and report.html.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT",
                   help="a training checkpoint file or a run's checkpoints/ folder (checkpoint mode)")
    p.add_argument("--data", metavar="DIR|synthetic", help="checkpoint mode: image folder, CelebA folder or 'synthetic'")
    p.add_argument("--occlusion", choices=[*KINDS, "all"], default=None, metavar="KIND",
                   help=f"checkpoint mode: {', '.join(KINDS)} or all (every single kind); default: the checkpoint's; "
                        "pairs mode: the label of the set")
    p.add_argument("--split", choices=["all", "train", "valid", "test"], default="all",
                   help="checkpoint mode: CelebA split (the shared faces: 8001-9000 is test; default all)")
    p.add_argument("--limit", metavar="N", type=_positive_int, default=None, help="checkpoint mode: only the first N images")
    p.add_argument("--seed", metavar="N", type=int, default=0, help="seed of the evaluation masks (default 0)")
    p.add_argument("--pred", metavar="DIR", help="pairs mode: folder of outputs")
    p.add_argument("--target", metavar="DIR", help="pairs mode: folder of clean targets")
    p.add_argument("--mask", metavar="DIR", help="pairs mode: folder of masks (255 = occluded)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder")
    p.add_argument("--batch", metavar="N", type=_positive_int, default=32, help="images per batch (default 32)")
    p.add_argument("--device", metavar="DEV", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--inception-weights", metavar="FILE", default=None,
                   help="pt_inception-2015-12-05-6726825d.pth for FID/KID (default: $FASTGAN_INCEPTION_WEIGHTS, "
                        "then torch hub's checkpoints folder; none: FID/KID skipped)")
    p.add_argument("--no-fid", action="store_true", help="skip FID and KID")
    p.add_argument("--kid-subsets", metavar="N", type=_positive_int, default=100, help="KID subsets (default 100)")
    p.add_argument("--kid-subset-size", metavar="N", type=_positive_int, default=1000,
                   help="KID subset size, clamped to the set size (default 1000)")
    p.add_argument("--lpips-weights", metavar="FILE", default=None, help="one file with LPIPS backbone + linear weights")
    p.add_argument("--no-face-detection", action="store_true", help="skip the face-detection rate")
    p.add_argument("--examples", metavar="K", type=int, default=8, help="best and worst examples shown (default 8, 0: none)")
    p.set_defaults(func=run)


def _load_reconstructor(path, device):
    """The training package's loader (a separate function so tests can replace it)."""
    try:
        from fastgan.train.inference import load_reconstructor
    except ImportError as e:
        raise ImportError(f"checkpoint mode needs fastgan.train.inference, which is missing here ({e}); "
                          f"use --pred/--target with images written by 'fastgan infer'") from e
    return load_reconstructor(path, device=device)


def _fail(message: str) -> int:
    print(f"fastgan eval: error: {message}", file=sys.stderr)
    return 2


def _check_mode(args) -> str | None:
    pairs = args.pred is not None or args.target is not None or args.mask is not None
    if args.checkpoint and pairs:
        return "give either CHECKPOINT --data DIR or --pred DIR --target DIR, not both"
    if args.checkpoint:
        if not args.data:
            return "checkpoint mode needs --data DIR"
        if not Path(args.checkpoint).exists():
            return f"the checkpoint {args.checkpoint} does not exist"
        if args.data != "synthetic" and not Path(args.data).is_dir():
            return f"the --data folder {args.data} does not exist or is not a directory"
        return None
    if not (args.pred and args.target):
        return "give CHECKPOINT --data DIR, or --pred DIR and --target DIR"
    if args.occlusion == "all":
        return "--occlusion all applies to checkpoint mode only"
    return None


def _build_evaluator(args, device, notes: list[str], settings: dict):
    from fastgan.metrics import face_detection, inception
    from fastgan.metrics.evaluate import Evaluator
    from fastgan.metrics.lpips import load_lpips

    feature_net = None
    if not args.no_fid:
        path = inception.find_inception_weights(args.inception_weights)  # raises when given but missing
        if path is None:
            notes.append("FID/KID not computed: " + inception.missing_message())
        else:
            feature_net = inception.load_inception(path, sha256=inception.INCEPTION_SHA256, device=device)
            settings["inception_weights"] = {"path": str(path), "sha256": inception.INCEPTION_SHA256}
    lpips = None
    if args.lpips_weights:
        lpips = load_lpips(args.lpips_weights, device=device)
        settings["lpips"] = {"path": args.lpips_weights, "backbone": lpips.kind}
    detector = None
    if not args.no_face_detection:
        try:
            detector = face_detection.FaceDetector()
            settings["face_detection"] = {
                "cascade": face_detection.CASCADE, "upsample_to": detector.upsample_to,
                "scale_factor": detector.scale_factor, "min_neighbors": detector.min_neighbors,
                "min_size_fraction": detector.min_size_fraction}
        except ImportError as e:
            notes.append(f"face-detection rate not computed: {e}")
    return Evaluator(feature_net=feature_net, lpips=lpips, detector=detector, examples=max(args.examples, 0),
                     kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size, device=device)


def run(args: argparse.Namespace) -> int:
    import torch

    from fastgan.data.io import ImageReadError
    from fastgan.metrics.evaluate import evaluate_checkpoint, evaluate_pairs, resolve_kinds, write_outputs

    problem = _check_mode(args)
    if problem:
        return _fail(problem)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    notes: list[str] = []
    settings = {"data_range": 1.0, "ssim": "Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, valid padding "
                                          "(scikit-image gaussian_weights=True)",
                "psnr_cap_db": 100.0, "mask_seed": args.seed, "device": str(device)}
    try:
        evaluator = _build_evaluator(args, device, notes, settings)
        if args.checkpoint:
            try:
                rec = _load_reconstructor(args.checkpoint, device)
            except ImportError:
                raise
            except Exception as e:  # whatever the checkpoint reader raises: report it, no traceback
                return _fail(f"could not load the checkpoint {args.checkpoint}: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}")
            kinds = resolve_kinds(args.occlusion, getattr(rec, "occlusion", None))
            result, examples, rows = evaluate_checkpoint(
                evaluator, rec, args.data, kinds=kinds, split=args.split, limit=args.limit, seed=args.seed,
                batch=args.batch)
            result["source"]["checkpoint"] = str(args.checkpoint)
            result["source"]["recipe"] = getattr(rec, "recipe", None)
        else:
            result, examples, rows = evaluate_pairs(evaluator, args.pred, args.target, args.mask,
                                                    kind=args.occlusion or "all", batch=args.batch)
    except (ValueError, TypeError, FileNotFoundError, ImageReadError, ImportError) as e:
        return _fail(str(e))
    result["notes"] = notes + result.get("notes", [])
    result["settings"] = settings
    report = write_outputs(args.out, result, examples, rows)
    for note in result["notes"]:
        print(f"note: {note}")
    keys = [k for k in ("ssim", "masked_ssim", "psnr", "masked_psnr", "fid", "face_detection_rate") if k in result]
    print("eval: " + ", ".join(f"{k} {result[k]:.4f}" for k in keys if result[k] == result[k]) + f" -> {report}")
    return 0
