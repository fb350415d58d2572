"""The comparison as a person reads it, and the per-image scatter (CSV for `dvc plots`, or a PNG)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unetseg.compare.pairing import UNCHANGED, Comparison
from unetseg.compare.runs import CompareError
from unetseg.evaluate.intervals import WORSE


def _verdict_line(c: Comparison) -> str:
    level = f"{c.confidence:.0%}"
    if c.verdict == WORSE:
        return f"verdict: {c.b} is worse than {c.a} ({c.metric}; the {level} interval of B - A lies below 0)"
    if c.verdict == "better":
        return f"verdict: {c.b} is better than {c.a} ({c.metric}; the {level} interval of B - A lies above 0)"
    return (f"verdict: no detectable difference between {c.a} and {c.b} ({c.metric}; the {level} interval "
            f"of B - A contains 0)")


def format_comparison(c: Comparison) -> str:
    """The human-readable report."""
    width = max(len(c.a), len(c.b), 5)
    lines = [
        f"{c.metric}, mean over {c.images['total']} validation images in {c.groups['total']} groups",
        f"  A {c.a:<{width}}  {c.a_score:.4f}",
        f"  B {c.b:<{width}}  {c.b_score:.4f}",
        f"  B - A {'':<{width - 4}}  {c.difference:+.4f}   {c.confidence:.0%} interval [{c.low:+.4f}, {c.high:+.4f}] "
        f"(bootstrap over groups, {c.resamples} resamples, seed {c.seed})",
        "  images: {better} better, {worse} worse, {unchanged} unchanged".format(**c.images),
        "  groups: {better} better, {worse} worse, {unchanged} unchanged".format(**c.groups),
    ]
    if c.lost_most:
        id_width = max(len(row["id"]) for row in c.lost_most)
        lines.append(f"  lost most:  {'id':<{id_width}}  {'A':>7}  {'B':>7}  {'B - A':>7}")
        lines += [f"              {row['id']:<{id_width}}  {row['a']:7.4f}  {row['b']:7.4f}  {row['difference']:+7.4f}"
                  for row in c.lost_most]
    lines.append(_verdict_line(c))
    return "\n".join(lines)


def write_scatter(path: str | Path, paired: pd.DataFrame, a: str, b: str, metric: str) -> None:
    """Per-image score A vs B: a CSV (id, group, a, b, difference) for `dvc plots`, or a PNG.

    The extension chooses: `.csv`, or `.png` (drawn with Pillow: points above the
    diagonal gained, green; below it lost, red; on it, grey).
    """
    from unetseg.core.atomic import atomic_output

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".png"):
        raise CompareError(f"--plot {path}: the name must end in .csv or .png")
    with atomic_output(path) as out:
        if suffix == ".csv":
            paired[["id", "group", "a", "b", "difference"]].to_csv(out, index=False, float_format="%.6f")
        else:
            _scatter_png(paired, a, b, metric).save(out, format="PNG")


def _scatter_png(paired: pd.DataFrame, a: str, b: str, metric: str):
    from PIL import Image, ImageDraw

    size, margin = 480, 48
    low = float(min(paired["a"].min(), paired["b"].min()))
    high = float(max(paired["a"].max(), paired["b"].max()))
    pad = (high - low) * 0.05 or 0.01
    low, high = low - pad, high + pad
    span = size - 2 * margin

    def xy(x, y):
        return margin + (x - low) / (high - low) * span, size - margin - (y - low) / (high - low) * span

    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([margin, margin, size - margin, size - margin], outline="black")
    draw.line([xy(low, low), xy(high, high)], fill=(170, 170, 170))
    for x, y, d in paired[["a", "b", "difference"]].itertuples(index=False):
        colour = (40, 160, 40) if d >= UNCHANGED else (220, 40, 40) if d <= -UNCHANGED else (120, 120, 120)
        px, py = xy(x, y)
        draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)
    draw.text((margin, 8), f"{metric} per image   green: B gained   red: B lost   grey: same", fill="black")
    draw.text((margin, 24), f"y (B): {b}", fill="black")
    draw.text((margin, size - margin + 20), f"x (A): {a}", fill="black")
    for value in (low, high):
        x, y = xy(value, value)
        draw.text((x - 10, size - margin + 4), f"{value:.3f}", fill="black")
        draw.text((4, y - 6), f"{value:.3f}", fill="black")
    return canvas
