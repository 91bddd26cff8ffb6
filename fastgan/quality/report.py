"""OUT/metrics.json of ``fastgan quality`` as the README's markdown tables, one per recipe,
the columns its score has (``fastgan quality --report``)."""

from __future__ import annotations

__all__ = ["markdown_tables"]

# the columns of each recipe's table: (metric key, header, format)
_COLUMNS = {
    "reconstruction": [("ssim", "SSIM", "{:.3f}"), ("psnr", "PSNR", "{:.2f} dB"),
                       ("ssim_occluded", "SSIM occluded", "{:.3f}"), ("psnr_occluded", "PSNR occluded", "{:.2f} dB"),
                       ("face_detection_rate", "faces detected", "{:.3f}"), ("fid", "FID", "{:.1f}"),
                       ("kid_random", "KID (random features)", "{:.4f}")],
    "vae": [("ssim_face", "SSIM face", "{:.3f}"), ("l1_face", "L1 face", "{:.4f}")],
    "simgan": [("kid_refined", "KID refined", "{:.4f}"), ("kid_unrefined", "KID unrefined (baseline)", "{:.4f}"),
               ("selfreg_l1", "self-reg L1", "{:.4f}")],
}


def _kind(recipe: str) -> str:
    return recipe if recipe in _COLUMNS else "reconstruction"


def markdown_tables(summary: dict) -> str:
    rows = [summary["rows"][name] for name in summary.get("order", summary["rows"])]
    out = []
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        mine = [r for r in rows if r["recipe"] == recipe]
        cols = [c for c in _COLUMNS[_kind(recipe)] if any(c[0] in r["metrics"] for r in mine)]
        out.append(f"{recipe}:\n")
        out.append("| row | budget | steps | " + " | ".join(c[1] for c in cols) + " |")
        out.append("|---" * (3 + len(cols)) + "|")
        for r in mine:
            cells = [fmt.format(r["metrics"][key]) if key in r["metrics"] else "" for key, _, fmt in cols]
            out.append(f"| {r['lever']} (`{r['row']}`) | {r['budget']} | {r['steps']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
