"""The ``fastgan`` command."""

from __future__ import annotations

import argparse
import json
import sys


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
    from fastgan.demo import run_loss_demo

    return run_loss_demo(batch=args.batch, size=args.size, repeats=args.repeats, seed=args.seed)


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
        "demo", help="run the fused losses on built-in synthetic images against the reference")
    demo.add_argument("--batch", type=_positive_int, default=8, help="images per batch (default 8)")
    demo.add_argument("--size", type=_positive_int, default=128, help="image side in pixels (default 128)")
    demo.add_argument("--repeats", type=_positive_int, default=5, help="timed repeats per loss (default 5)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
