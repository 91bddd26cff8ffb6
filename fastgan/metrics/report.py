"""The outputs of ``fastgan eval``: metrics.json, per_image.csv and a self-contained report.html.

- ``metrics.json``: strict JSON (NaN and Inf written as null): the overall metrics (``ssim``,
  ``psnr``, ``masked_ssim``, ``masked_psnr``, ...), ``groups`` ({"kind": ..., "area": ...,
  "kind_area": ...}, each group with the same metric keys and its ``count``), ``settings`` and
  ``notes``.
- ``report.html``: the tables, a bar chart per metric over the mask-area bins and grids of the best
  and worst examples (by masked SSIM, else SSIM). Every image is embedded as a base64 data URI, so
  the file can be mailed or attached on its own; the same PNGs are written beside it
  (``plots/*.png``, ``examples_best.png``, ``examples_worst.png``) for other uses.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path

from fastgan.metrics.grouping import AREA_BINS
from fastgan.metrics.plot import bar_chart

# the metrics shown in tables, in this order, with a short meaning
COLUMNS = [
    ("count", "images"),
    ("ssim", "SSIM, full image (higher is better)"),
    ("masked_ssim", "SSIM over the occluded region"),
    ("psnr", "PSNR in dB, full image"),
    ("masked_psnr", "PSNR in dB over the occluded region"),
    ("l1", "mean absolute error, full image"),
    ("masked_l1", "mean absolute error over the occluded region"),
    ("ms_ssim", "multi-scale SSIM, full image"),
    ("lpips", "LPIPS (lower is better)"),
    ("fid", "FID against the clean images (lower is better)"),
    ("kid", "KID against the clean images"),
    ("face_detection_rate", "share of outputs with a detected face"),
    ("face_detection_rate_input", "share of occluded inputs with a detected face"),
    ("mask_area", "mean occluded fraction"),
]


def clean(obj):
    """obj with NaN/Inf floats as None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def write_json(path: Path, result: dict) -> None:
    path.write_text(json.dumps(clean(result), indent=2, allow_nan=False) + "\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def _table(rows: dict[str, dict], first: str) -> str:
    cols = [(k, t) for k, t in COLUMNS if any(k in r for r in rows.values())]
    head = "".join(f'<th title="{html.escape(t)}">{html.escape(k)}</th>' for k, t in cols)
    body = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{_fmt(r.get(k))}</td>" for k, _ in cols)
                   + "</tr>" for name, r in rows.items())
    return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{body}</table>"


def _png_bytes(image) -> bytes:
    from PIL import Image

    from fastgan.data.io import to_uint8

    arr = to_uint8(image.cpu()).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def area_plots(result: dict) -> dict[str, bytes]:
    """{file stem: PNG} of each headline metric over the area bins, one series per kind."""
    groups = result.get("groups", {})
    per = groups.get("kind_area")
    if not per:
        return {}
    present = [AREA_BINS.index(b) for b in groups["area"]]
    bins = list(AREA_BINS[:max(present) + 1])  # empty bins too, so the axis is linear in area
    out = {}
    for metric in ("masked_ssim", "masked_psnr", "ssim", "psnr", "face_detection_rate"):
        series = {k: [float(v[b].get(metric, math.nan)) if b in v and v[b].get(metric) is not None else math.nan
                      for b in bins] for k, v in per.items()}
        if all(math.isnan(x) for xs in series.values() for x in xs):
            continue
        out[f"{metric}_by_area"] = bar_chart(bins, series, f"{metric} by occluded area", metric)
    return out


def write_report(out: Path, result: dict, examples: dict | None = None) -> Path:
    """Write report.html (and its PNGs beside it) for ``result``; ``examples``: {"best": (C, H, W)
    grid, "worst": grid, "columns": description}. Returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    plots = area_plots(result)
    (out / "plots").mkdir(exist_ok=True)
    for stem, data in plots.items():
        (out / "plots" / f"{stem}.png").write_bytes(data)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>fastgan eval</title><style>",
             "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}",
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}",
             "td:first-child{text-align:left}img{max-width:100%;display:block;margin:.5em 0}</style></head><body>",
             "<h1>fastgan eval</h1>"]
    src = result.get("source", {})
    parts.append("<p>" + html.escape(", ".join(f"{k}: {v}" for k, v in src.items())) + "</p>")
    overall = {k: result[k] for k, _ in COLUMNS if k in result}
    parts += ["<h2>All images</h2>", _table({"all": overall}, "set")]
    groups = result.get("groups", {})
    if groups.get("kind"):
        parts += ["<h2>Per occlusion kind</h2>", _table(groups["kind"], "kind")]
    if groups.get("area"):
        parts += ["<h2>Per occluded area</h2>", _table(groups["area"], "area")]
    if plots:
        parts.append("<h2>Metrics by occluded area</h2>")
        parts += [_img(data, stem) for stem, data in plots.items()]
    if examples:
        for which in ("best", "worst"):
            data = _png_bytes(examples[which])
            (out / f"examples_{which}.png").write_bytes(data)
            parts += [f"<h2>{which.capitalize()} examples by {html.escape(examples['score'])}</h2>",
                      f"<p>Rows: {html.escape(examples['columns'])}; scores: "
                      f"{html.escape(', '.join(f'{s:.3f}' for s in examples[which + '_scores']))}</p>",
                      _img(data, f"{which} examples")]
    if result.get("notes"):
        parts += ["<h2>Notes</h2><ul>"] + [f"<li>{html.escape(n)}</li>" for n in result["notes"]] + ["</ul>"]
    parts += ["<h2>Settings</h2><pre>", html.escape(json.dumps(clean(result.get("settings", {})), indent=2)),
              "</pre><h2>What the columns mean</h2><ul>"]
    parts += [f"<li><b>{k}</b>: {html.escape(t)}</li>" for k, t in COLUMNS]
    parts.append("</ul></body></html>\n")
    path = out / "report.html"
    path.write_text("".join(parts))
    return path
