"""The sampler comparison as files: a CSV of every trial, a CSV summary and a plotly HTML report.

The report has six panels: best-so-far against trial number (mean over seeds, band = ±1 standard
deviation) and against wall time, the distribution of final best values, trials needed to reach
the target, the fraction of pruned trials, and the sampler's own time per trial.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hpo.compare import trials_to_target

PANEL_TITLES = (
    "best so far vs trial (mean, band ±1 sd over seeds)",
    "best so far vs wall time (mean over seeds)",
    "final best value per seed",
    "trials needed to reach the target",
    "pruned fraction of trials",
    "sampler time per trial (ms, mean over seeds)",
)
WALL_TIME_POINTS = 80


def comparison_figure(
    trials: pd.DataFrame, direction: str, target: float | None, title: str = ""
) -> go.Figure:
    """The six-panel figure; every sampler has one mean curve (named after it) per line panel."""
    figure = make_subplots(rows=3, cols=2, subplot_titles=PANEL_TITLES, vertical_spacing=0.09)
    palette = plotly.colors.qualitative.Plotly
    samplers = list(dict.fromkeys(trials["sampler"]))
    to_target = trials_to_target(trials, direction, target)
    for index, sampler in enumerate(samplers):
        color = palette[index % len(palette)]
        rows = trials[trials["sampler"] == sampler]
        _add_best_by_trial(figure, rows, sampler, color)
        _add_best_by_time(figure, rows, sampler, color, direction)
        final = rows.groupby("seed")["best_so_far"].last()
        figure.add_trace(
            go.Box(y=final, name=sampler, marker_color=color, boxpoints="all", showlegend=False),
            row=2, col=1,
        )
        needed = to_target.loc[to_target["sampler"] == sampler, "trials_to_target"]
        figure.add_trace(
            go.Box(
                y=needed.dropna(), name=f"{sampler} ({int(needed.notna().sum())}/{needed.size})",
                marker_color=color, boxpoints="all", showlegend=False,
            ),
            row=2, col=2,
        )
        figure.add_trace(
            go.Bar(x=[sampler], y=[float((rows["state"] == "PRUNED").mean())], marker_color=color,
                   name=sampler, showlegend=False),
            row=3, col=1,
        )
        overhead = rows.groupby("number")["sampler_s"].mean() * 1000
        figure.add_trace(
            go.Scatter(x=overhead.index + 1, y=overhead.to_numpy(), mode="lines", name=sampler,
                       line={"color": color, "width": 1}, legendgroup=sampler, showlegend=False),
            row=3, col=2,
        )
    goal = "higher is better" if direction == "maximize" else "lower is better"
    target_text = f", target {target:g}" if target is not None else ", no target given"
    figure.update_layout(
        title=f"{title} ({goal}{target_text})", height=1200, template="plotly_white",
        legend={"title": "sampler"},
    )
    figure.update_xaxes(title_text="trial", row=1, col=1)
    figure.update_xaxes(title_text="seconds since the study started", row=1, col=2)
    figure.update_xaxes(title_text="trial", row=3, col=2)
    figure.update_yaxes(type="log", row=3, col=2)
    figure.update_yaxes(range=[0, 1], row=3, col=1)
    return figure


def _add_best_by_trial(figure: go.Figure, rows: pd.DataFrame, sampler: str, color: str) -> None:
    curves = rows.pivot_table(index="number", columns="seed", values="best_so_far", aggfunc="last")
    x = curves.index.to_numpy() + 1
    mean = curves.mean(axis=1).to_numpy()
    spread = curves.std(axis=1, ddof=1).fillna(0.0).to_numpy() if curves.shape[1] > 1 else 0 * mean
    figure.add_trace(
        go.Scatter(
            x=np.concatenate([x, x[::-1]]), y=np.concatenate([mean + spread, (mean - spread)[::-1]]),
            fill="toself", fillcolor=_transparent(color), line={"width": 0}, hoverinfo="skip",
            name=f"{sampler} ±1 sd", legendgroup=sampler, showlegend=False,
        ),
        row=1, col=1,
    )
    figure.add_trace(
        go.Scatter(x=x, y=mean, mode="lines", name=sampler, line={"color": color}, legendgroup=sampler),
        row=1, col=1,
    )


def _add_best_by_time(
    figure: go.Figure, rows: pd.DataFrame, sampler: str, color: str, direction: str
) -> None:
    finished = rows.dropna(subset=["elapsed_s", "value"])
    if finished.empty:
        return
    grid = np.linspace(0.0, float(finished["elapsed_s"].max()), WALL_TIME_POINTS)
    curves = []
    for _, study in finished.groupby("seed"):
        study = study.sort_values("elapsed_s")
        values = study["value"].to_numpy(dtype=float)
        best = np.maximum.accumulate(values) if direction == "maximize" else np.minimum.accumulate(values)
        position = np.searchsorted(study["elapsed_s"].to_numpy(dtype=float), grid, side="right") - 1
        curves.append(np.where(position >= 0, best[np.clip(position, 0, None)], np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # grid points before any seed finished a trial
        mean = np.nanmean(np.vstack(curves), axis=0)
    figure.add_trace(
        go.Scatter(x=grid, y=mean, mode="lines", name=sampler, line={"color": color},
                   legendgroup=sampler, showlegend=False),
        row=1, col=2,
    )


def _transparent(color: str, alpha: float = 0.15) -> str:
    red, green, blue = plotly.colors.hex_to_rgb(color)
    return f"rgba({red},{green},{blue},{alpha})"


def write_report(
    trials: pd.DataFrame,
    summary: pd.DataFrame,
    out_dir: str | Path,
    *,
    direction: str,
    target: float | None,
    title: str,
    budgets_table: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``trials.csv``, ``summary.csv`` and ``report.html`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trials": out / "trials.csv", "summary": out / "summary.csv", "report": out / "report.html"}
    trials.to_csv(paths["trials"], index=False)
    summary.to_csv(paths["summary"], index=False)
    figure = comparison_figure(trials, direction, target, title)
    tables = summary.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
    if budgets_table is not None:
        tables += "<h2>Best value by budget</h2>" + budgets_table.to_html(
            index=False, float_format=lambda v: f"{v:.4g}", na_rep=""
        )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><h2>Summary</h2>{tables}"
        f"{figure.to_html(full_html=False, include_plotlyjs=True)}</body></html>"
    )
    paths["report"].write_text(page, encoding="utf-8")
    return paths
