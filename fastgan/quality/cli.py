"""``fastgan quality``: run rows of the README quality tables and write OUT/metrics.json."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_parsers", "DEFAULT_DATA"]

# The shared CelebA faces beside the project checkout (their README: research use only).
DEFAULT_DATA = "../shared/data/faces/celeba-89x109"


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def add_parsers(sub) -> None:
    from fastgan.quality.rows import TABLES

    p = sub.add_parser(
        "quality", help="reproduce the README quality tables: train each row, score it on held-out faces",
        description="Train each row of a README quality table (a recipe, its options and a CPU-minute "
                    "or step budget) on the CelebA train split (000001-008000), score it on the held-out "
                    "split (008001-009000) with fixed-seed occlusions, and write OUT/ROW/score.json and "
                    "OUT/metrics.json. Rows scored before with the same configuration are kept, so an "
                    "interrupted run continues. --minutes gives every row that budget instead of its own.")
    p.add_argument("--table", choices=sorted(TABLES), default="pix2pix",
                   help="which table's rows (default pix2pix; 'all' for every table)")
    p.add_argument("--rows", default=None, help="comma-separated row names instead of --table")
    p.add_argument("--minutes", type=_positive(float), default=None, help="budget of every row, in minutes")
    p.add_argument("--steps", type=_positive(int), default=None, help="or in steps")
    p.add_argument("--data", default=os.environ.get("FASTGAN_FACES", DEFAULT_DATA),
                   help=f"CelebA folder (default $FASTGAN_FACES or {DEFAULT_DATA})")
    p.add_argument("--out", default="runs/quality", help="output folder (default runs/quality)")
    p.add_argument("--limit", type=_positive(int), default=None, help="score only the first N held-out images")
    p.add_argument("--inception-weights", default=None, help="FID/KID weights for the mask-removal rows")
    p.add_argument("--list", action="store_true", help="print the rows and their commands, run nothing")
    p.add_argument("--report", action="store_true", help="print OUT/metrics.json as markdown tables, run nothing")
    p.set_defaults(func=_cmd_quality)


def _cmd_quality(args: argparse.Namespace) -> int:
    from fastgan.quality.rows import ROWS, TABLES
    from fastgan.quality.run import run_rows, train_command

    names = [n.strip() for n in args.rows.split(",") if n.strip()] if args.rows else TABLES[args.table]
    if args.list:
        for name in names:
            row = ROWS.get(name)
            if row is None:
                raise ValueError(f"quality: unknown row {name!r}")
            print(f"{name:<28}{row.recipe:<14}{row.budget():<12}{row.lever}\n  {train_command(row, args.data)}")
        return 0
    if args.report:
        import json

        from fastgan.quality.report import markdown_tables
        path = Path(args.out) / "metrics.json"
        if not path.is_file():
            raise ValueError(f"quality: {path} does not exist: run some rows first")
        print(markdown_tables(json.loads(path.read_text())))
        return 0
    if args.minutes is not None and args.steps is not None:
        raise ValueError("quality: give --minutes or --steps, not both")
    if not Path(args.data).is_dir():
        raise ValueError(f"quality: --data {args.data!r} is not a folder: the tables are measured on the "
                         "shared CelebA faces (give their folder, or set FASTGAN_FACES)")
    run_rows(names, data=args.data, out=args.out, minutes=args.minutes, steps=args.steps, limit=args.limit,
             inception_weights=args.inception_weights)
    return 0
