"""Quality tables: each row of the README's quality tables as a named run (a recipe, its
options and a budget) and the held-out score its recipe is judged by.

>>> from fastgan.quality import ROWS, run_rows
>>> run_rows(["pix2pix-default-8"], data="../shared/data/faces/celeba-89x109", out="runs/quality")

``fastgan quality`` (and ``make quality``) run them from the command line and write
``OUT/metrics.json``.
"""

from fastgan.quality.rows import ROWS, TABLES, Row

__all__ = ["ROWS", "TABLES", "Row", "run_rows"]


def __getattr__(name: str):
    if name == "run_rows":   # imported on use: `fastgan --help` should not load torch
        from fastgan.quality.run import run_rows
        return run_rows
    raise AttributeError(f"module 'fastgan.quality' has no attribute {name!r}")
