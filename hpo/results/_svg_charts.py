"""Tiny SVG charts for trial artifacts: learning curves and a confusion heat map.

optuna-dashboard shows ``image/*`` artifacts inline beside a trial, so each trial's
pictures are SVG strings written here in well under a millisecond. (Plotly needs a
4.6 MB plotly.js per offline HTML file or a browser-based exporter for images;
matplotlib takes 60-170 ms per figure on the project machine, several per cent of a
few-second trial: see ``benchmarks/artifacts.py``.) Study-level figures, where cost
does not matter, are plotly (:mod:`hpo.report`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
FONT = 'font-family="sans-serif"'


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]``."""
    if not high > low:
        return [low]
    raw_step = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step), default=raw_step)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9 * step:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _format(value: float) -> str:
    return f"{value:.3g}"


def _line_panel(
    series: Mapping[str, Sequence[float]],
    steps: Sequence[float],
    *,
    left: float,
    top: float,
    width: float,
    height: float,
    title: str,
) -> list[str]:
    """One axis box with a polyline per series (non-finite points skipped)."""
    parts = [
        f'<text x="{left + width / 2:.1f}" y="{top - 8:.1f}" text-anchor="middle" font-size="13" {FONT}>'
        f"{escape(title)}</text>",
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>',
    ]
    finite = [v for values in series.values() for v in values if math.isfinite(v)]
    if not finite or not steps:
        return parts
    y_low, y_high = min(finite), max(finite)
    if y_high == y_low:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    x_low, x_high = min(steps), max(steps)
    x_span = (x_high - x_low) or 1.0

    def x_at(step: float) -> float:
        return left + (step - x_low) / x_span * width

    def y_at(value: float) -> float:
        return top + height - (value - y_low) / (y_high - y_low) * height

    for tick in _nice_ticks(y_low, y_high):
        y = y_at(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" {FONT}>{_format(tick)}</text>'
        )
    x_ticks = _nice_ticks(x_low, x_high, 6)
    if all(float(step).is_integer() for step in steps):  # epochs: no tick at 2.5
        x_ticks = [tick for tick in x_ticks if float(tick).is_integer()] or x_ticks
    for tick in x_ticks:
        parts.append(
            f'<text x="{x_at(tick):.1f}" y="{top + height + 14}" text-anchor="middle" font-size="10" {FONT}>'
            f"{_format(tick)}</text>"
        )
    parts.append(
        f'<text x="{left + width / 2:.1f}" y="{top + height + 30}" text-anchor="middle" font-size="11" {FONT}>'
        "epoch</text>"
    )
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        points = " ".join(
            f"{x_at(s):.1f},{y_at(v):.1f}" for s, v in zip(steps, values) if math.isfinite(v)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8">'
                     f"<title>{escape(name)}</title></polyline>")
        legend_y = top + height + 46 + 14 * index
        parts.append(f'<line x1="{left}" y1="{legend_y - 4}" x2="{left + 18}" y2="{legend_y - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        last = next((v for v in reversed(values) if math.isfinite(v)), float("nan"))
        parts.append(f'<text x="{left + 24}" y="{legend_y}" font-size="11" {FONT}>'
                     f"{escape(name)} (last {_format(last)})</text>")
    return parts


def learning_curves_svg(history: Sequence[Mapping[str, float]], title: str = "Learning curves") -> str:
    """Per-epoch metrics as an SVG: one panel for losses, one for scores, one for the learning rate.

    Small enough (about 900 x 250 px) to be the picture in the trial's optuna-dashboard note.

    ``history[i]`` holds the metrics of epoch ``i + 1`` (or of ``history[i]["epoch"]``).
    """
    steps = [float(row.get("epoch", row.get("step", index + 1))) for index, row in enumerate(history)]
    names = [name for row in history for name in row if name not in ("epoch", "step")]
    names = list(dict.fromkeys(names))
    series = {name: [float(row.get(name, math.nan)) for row in history] for name in names}
    def panel_of(name: str) -> str:
        if name == "lr" or name.startswith(("lr_", "learning_rate")):
            return "learning rate"
        return "loss" if any(word in name for word in ("loss", "mse", "error")) else "metrics"

    panels = [(label, {n: v for n, v in series.items() if panel_of(n) == label})
              for label in ("loss", "metrics", "learning rate")]
    panels = [(label, data) for label, data in panels if data]
    panel_width, panel_height, margin = 230, 110, 52  # about 900 x 250 px: it fits the trial's note
    legend_rows = max((len(data) for _, data in panels), default=0)
    width = margin + len(panels) * (panel_width + margin) if panels else 400
    height = 40 + panel_height + 50 + 14 * legend_rows + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="16" font-size="14" font-weight="bold" {FONT}>{escape(title)}</text>',
    ]
    for index, (label, data) in enumerate(panels):
        parts += _line_panel(
            data, steps, left=margin + index * (panel_width + margin), top=40,
            width=panel_width, height=panel_height, title=label,
        )
    if not panels:
        parts.append(f'<text x="10" y="40" font-size="12" {FONT}>no per-epoch metrics recorded</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _blue(fraction: float) -> str:
    """White (0) to dark blue (1)."""
    fraction = min(max(fraction, 0.0), 1.0)
    red, green, blue = (int(round(255 + (end - 255) * fraction)) for end in (8, 48, 107))
    return f"#{red:02x}{green:02x}{blue:02x}"


def confusion_matrix_svg(confusion: np.ndarray, labels: Sequence[str], title: str = "Confusion matrix") -> str:
    """Heat map of counts (rows: true tissue, columns: predicted), shaded by row fraction.

    Each non-zero cell carries a ``<title>`` tooltip (true, predicted, count, row fraction).
    """
    counts = np.asarray(confusion)
    n = counts.shape[0]
    cell = max(12, min(36, 600 // max(n, 1)))
    label_space = 8 + 6.5 * max((len(label) for label in labels), default=1)
    left, top = label_space + 10, 40 + label_space
    width, height = max(int(left + n * cell + 20), 460), int(top + n * cell + 40)
    row_totals = counts.sum(axis=1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="16" font-size="14" font-weight="bold" {FONT}>{escape(title)}</text>',
        f'<text x="10" y="32" font-size="11" {FONT}>rows: true tissue, columns: predicted; '
        f"shade: fraction of the row</text>",
    ]
    font_size = max(6, min(11, cell // 3))
    for i, label in enumerate(labels):
        y = top + i * cell + cell / 2 + font_size / 3
        parts.append(f'<text x="{left - 4:.1f}" y="{y:.1f}" text-anchor="end" font-size="{font_size}" {FONT}>'
                     f"{escape(label)}</text>")
        x = left + i * cell + cell / 2 + font_size / 3
        parts.append(f'<text x="{x:.1f}" y="{top - 4:.1f}" font-size="{font_size}" {FONT} '
                     f'transform="rotate(-90 {x:.1f} {top - 4:.1f})">{escape(label)}</text>')
    grid_end_x, grid_end_y = left + n * cell, top + n * cell
    parts.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{n * cell}" height="{n * cell}" fill="white" '
                 'stroke="#ccc"/>')
    for k in range(1, n):  # faint grid; only non-zero cells get a shaded rectangle
        parts.append(f'<line x1="{left + k * cell:.1f}" y1="{top:.1f}" x2="{left + k * cell:.1f}" '
                     f'y2="{grid_end_y:.1f}" stroke="#eee"/>')
        parts.append(f'<line x1="{left:.1f}" y1="{top + k * cell:.1f}" x2="{grid_end_x:.1f}" '
                     f'y2="{top + k * cell:.1f}" stroke="#eee"/>')
    names = [escape(label) for label in labels]
    rows, totals = counts.tolist(), row_totals.tolist()
    for i, row in enumerate(rows):
        for j, count in enumerate(row):
            if not count:
                continue
            fraction = count / totals[i]
            x, y = left + j * cell, top + i * cell
            colour = "white" if fraction > 0.5 else "black"
            parts.append(
                f'<g><title>true {names[i]}, predicted {names[j]}: {count} ({fraction:.0%} of the row)</title>'
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell}" height="{cell}" fill="{_blue(fraction)}" stroke="#ddd"/>'
                f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2 + font_size / 3:.1f}" text-anchor="middle" '
                f'font-size="{font_size}" fill="{colour}" {FONT}>{count}</text></g>'
            )
    accuracy = np.trace(counts) / counts.sum() if counts.sum() else float("nan")
    parts.append(f'<text x="{left}" y="{height - 14}" font-size="11" {FONT}>'
                 f"{int(counts.sum())} samples, accuracy {accuracy:.3f}</text>")
    parts.append("</svg>")
    return "\n".join(parts)

