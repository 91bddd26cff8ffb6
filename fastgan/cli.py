"""The ``fastgan`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings

from fastgan.metrics.cli import add_parsers as add_eval_parsers
from fastgan.quality.cli import add_parsers as add_quality_parsers
from fastgan.train.cli import add_parsers as add_train_parsers


def _cmd_info(args: argparse.Namespace) -> int:
    from fastgan import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.losses or args.repeats is not None:
        from fastgan.demo import run_loss_demo

        return run_loss_demo(batch=args.batch or 16, size=args.size or 256, repeats=args.repeats or 5,
                             seed=args.seed)
    from fastgan.demo import run_training_demo
    from fastgan.train import ConfigError, TrainingDiverged

    try:
        return run_training_demo(data=args.data, out=args.out, steps=args.steps, minutes=args.minutes,
                                 size=args.size, batch=args.batch, compile=args.compile, seed=args.seed)
    except (ConfigError, TrainingDiverged, ValueError) as e:
        print(f"fastgan demo: error: {e}", file=sys.stderr)
        return 2


def _cmd_occlude(args: argparse.Namespace) -> int:
    from fastgan.data.export import kinds_grid, occlude_folder

    options = {}
    if args.square_size is not None:
        if args.kind == "square":
            options["size"] = args.square_size
        elif args.kind == "mix":
            options["options"] = {"square": {"size": args.square_size}}
        else:
            print("fastgan occlude: error: --square-size applies to --kind square or mix", file=sys.stderr)
            return 2
    try:
        occlude_folder(args.src, args.dst, args.kind, size=args.size, seed=args.seed, limit=args.limit,
                       batch=args.batch, options=options)
        if args.grid:
            kinds_grid(args.src, args.grid, size=args.size, seed=args.seed, count=args.grid_count)
    except (ValueError, TypeError) as e:
        print(f"fastgan occlude: error: {e}", file=sys.stderr)
        return 2
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print the build facts (compiled kernels, CUDA, Triton)")
    info.add_argument("--json", action="store_true", help="print them as JSON")
    info.set_defaults(func=_cmd_info)

    demo = sub.add_parser(
        "demo", help="a short real training on built-in synthetic faces, ending with held-out SSIM/PSNR",
        description="Train pix2pix on nose-mask occlusions of the built-in synthetic faces (or --data DIR) "
                    "for a few minutes on a CPU (seconds on a GPU), then print the held-out SSIM / PSNR "
                    "and the path of a sample grid. --losses runs the fused-loss check instead.")
    demo.add_argument("--data", default="synthetic", help="'synthetic' (default) or an image / CelebA folder")
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--steps", type=_positive_int, default=None, help="training steps (default 600 CPU, 1500 GPU)")
    demo.add_argument("--minutes", type=float, default=None, help="or a time budget in minutes")
    demo.add_argument("--size", type=_positive_int, default=None, help="image side (default 64 CPU, 128 GPU)")
    demo.add_argument("--batch", type=_positive_int, default=None, help="batch size (default 16 CPU, 32 GPU)")
    demo.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                      help="torch.compile the steps (default: on a GPU)")
    demo.add_argument("--losses", action="store_true",
                      help="instead: check and time the fused losses against the reference")
    demo.add_argument("--repeats", type=_positive_int, default=None,
                      help="timed repeats per loss (implies --losses; default 5)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=_cmd_demo)

    from fastgan.data.occlusion import KINDS

    occ = sub.add_parser(
        "occlude", help="write occluded images, their masks and the clean targets as PNG files",
        description="For every image NAME under SRC (jpg/png/webp, recursive; a CelebA layout; or "
                    "'synthetic'), write DST/occluded/NAME.png, DST/mask/NAME.png (255 = occluded) and "
                    "DST/target/NAME.png, centre-cropped and resized to SIZE. The same options give "
                    "the same bytes.")
    occ.add_argument("src", help="image folder, CelebA folder, or 'synthetic'")
    occ.add_argument("dst", help="output folder")
    occ.add_argument("--kind", choices=KINDS, default="mix", help="occlusion kind (default mix)")
    occ.add_argument("--size", type=_positive_int, default=128, help="output side in pixels (default 128)")
    occ.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    occ.add_argument("--limit", type=_positive_int, default=None, help="only the first N images (sorted)")
    occ.add_argument("--batch", type=_positive_int, default=32, help="images per batch (default 32)")
    occ.add_argument("--square-size", type=float, default=None,
                     help="square side as a fraction of the image side (square and mix; default 0.25-0.5)")
    occ.add_argument("--grid", metavar="FILE.png", default=None,
                     help="also write a PNG grid of every kind on the first images, with their masks")
    occ.add_argument("--grid-count", type=_positive_int, default=8, help="images in the grid (default 8)")
    occ.set_defaults(func=_cmd_occlude)
    add_train_parsers(sub)  # train, infer
    add_eval_parsers(sub)  # eval
    add_quality_parsers(sub)  # quality
    return parser


def _is_input_error(e: BaseException) -> bool:
    """Errors that bad input or a bad environment cause (an unreadable file, a full disk, a
    wrong option), reported in one line; anything else is a bug and keeps its traceback."""
    if isinstance(e, (ValueError, TypeError, OSError, MemoryError)):
        return True
    return type(e).__name__ == "DecompressionBombError"   # Pillow's, not an OSError


def _describe(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return {MemoryError: f"out of memory{': ' + text if text else ''}"}.get(type(e), text or type(e).__name__)


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Warnings (skipped files, small samples) as 'fastgan CMD: warning: ...' lines on stderr."""
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *a, **k: f"fastgan {command}: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: list[str] | None = None) -> int:
    """Run a command; bad input ends it with one line on stderr and status 2, never a
    traceback (``FASTGAN_TRACEBACK=1`` shows it)."""
    args = build_parser().parse_args(argv)
    with _one_line_warnings(args.command):
        try:
            return args.func(args)
        except KeyboardInterrupt:
            print(f"fastgan {args.command}: interrupted", file=sys.stderr)
            return 130
        except Exception as e:  # noqa: BLE001 - filtered by _is_input_error
            if not _is_input_error(e) or os.environ.get("FASTGAN_TRACEBACK") == "1":
                raise
            print(f"fastgan {args.command}: error: {_describe(e)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
