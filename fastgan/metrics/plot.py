"""A grouped bar chart as PNG bytes, drawn with Pillow (no matplotlib needed): one group of bars
per x label (area bin), one bar per series (occlusion kind), the value printed on each bar."""

from __future__ import annotations

import io
import math

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def _fmt(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def bar_chart(labels: list[str], series: dict[str, list[float]], title: str, ylabel: str,
              width: int = 760, height: int = 360) -> bytes:
    """PNG bytes of bars ``series[name][i]`` over ``labels[i]`` (NaN: no bar)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 60, 20, 40, 50
    values = [v for vs in series.values() for v in vs if not math.isnan(v)]
    hi = max(values + [0.0])
    lo = min(values + [0.0])
    if hi == lo:
        hi = lo + 1
    span = hi - lo
    plot_h = height - top - bottom

    def y_of(v):
        return top + plot_h * (hi - v) / span

    d.text((left, 10), f"{title} ({ylabel})" if ylabel not in title else title, fill="black", font=font)
    for i in range(5):  # horizontal grid and tick labels
        v = lo + span * i / 4
        y = y_of(v)
        d.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        d.text((5, y - 6), _fmt(v), fill="black", font=font)
    d.line([(left, y_of(0)), (width - right, y_of(0))], fill="black")
    n_groups, n_series = max(len(labels), 1), max(len(series), 1)
    group_w = (width - left - right) / n_groups
    bar_w = min(max(2.0, group_w * 0.8 / n_series), 48.0)
    for g, label in enumerate(labels):
        x0 = left + g * group_w + (group_w - bar_w * n_series) / 2
        for s, (name, vs) in enumerate(series.items()):
            v = vs[g]
            if math.isnan(v):
                continue
            x = x0 + s * bar_w
            y1, y2 = sorted((y_of(v), y_of(0)))
            d.rectangle([x, y1, x + bar_w - 1, y2], fill=PALETTE[s % len(PALETTE)])
            if n_series <= 3:
                d.text((x, y1 - 12), _fmt(v), fill="black", font=font)
        d.text((left + g * group_w + group_w / 2 - 3 * len(label), height - bottom + 5), label, fill="black", font=font)
    for s, name in enumerate(series):  # legend
        x = left + 10 + s * 110
        d.rectangle([x, height - 20, x + 10, height - 10], fill=PALETTE[s % len(PALETTE)])
        d.text((x + 14, height - 21), name, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
