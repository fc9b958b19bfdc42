"""The sampler comparison as files: a CSV of every trial, a CSV summary and a plotly HTML report.

The report names the winner, ranks the samplers (by final best value and by time to the target),
lists the options each sampler ran with, and draws up to six panels: best-so-far against trial
number (mean over seeds, band = ±1 standard deviation) and against wall time, the distribution of
final best values, trials needed to reach the target (seeds that never reached it are marked "not
reached" with their best), the fraction of pruned trials, and the sampler's own time per trial. A
panel that cannot show anything (no target; no trial pruned) is left out and the page says why.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hpo.compare import rank_samplers, trials_to_target, verdict

PANELS: dict[str, str] = {
    "by_trial": "best so far vs trial (mean, band ±1 sd over seeds)",
    "by_time": "best so far vs wall time (mean over seeds)",
    "final": "final best value per seed",
    "to_target": "trials needed to reach the target (x: not reached)",
    "pruned": "pruned fraction of trials",
    "overhead": "sampler time per trial (ms, mean over seeds)",
}
"""Panel key -> title, in page order."""
PANEL_TITLES = tuple(PANELS.values())
WALL_TIME_POINTS = 80
PANEL_HEIGHT = 380
PAGE_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:1400px}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}"
    "td{text-align:right}th{background:#f3f3f3}.scroll{max-width:100%;overflow-x:auto}"
    ".study-header td{text-align:left;word-break:break-word}"  # sentences and JSON read left to right
    ".note{color:#8a5a00;background:#fff8e5;padding:.5em 1em;border-left:4px solid #f0b400}"
    ".verdict{font-size:1.1em;line-height:1.6;background:#eef6ee;padding:.5em 1em;border-left:4px solid #3a9a3a}"
    "details>summary{font-size:1.2em;cursor:pointer;margin:.8em 0}h2{border-bottom:1px solid #ddd}"
    ".headline{font-size:1.1em;line-height:1.5;background:#eef6ee;padding:.3em 1em;border-left:4px solid #3a9a3a}"
    ".headline p{margin:.35em 0}pre.commands{background:#f6f6f6;padding:.6em 1em;overflow-x:auto;font-size:13px}"
    "#plotly-missing{font-weight:bold}"
)
"""Style of the comparison page and of :mod:`hpo.report`'s pages: wide tables scroll in their box."""


PLOTLY_MISSING_ID = "plotly-missing"


def plotly_missing_html() -> str:
    """A visible line saying plotly.js did not load, which the page removes as soon as it did.

    The page loads plotly.js in its head, before this runs: a report copied without its
    ``plotly.min.js`` keeps the line instead of showing empty headings with no hint.
    """
    return (f"<p class='note' id='{PLOTLY_MISSING_ID}'>plotly.min.js missing: the figures on this page need it. Copy "
            "the whole report folder (report.html and plotly.min.js), or write the report again with "
            "<code>--plotly-js inline</code>.</p>"
            f"<script>if (window.Plotly) document.getElementById('{PLOTLY_MISSING_ID}').remove();</script>")


def figure_panels(trials: pd.DataFrame, target: float | None) -> list[str]:
    """The panels worth drawing: no target-panel without a target, no pruned-panel when nothing was pruned."""
    return [
        key for key in PANELS
        if not (key == "to_target" and target is None)
        and not (key == "pruned" and not (trials["state"] == "PRUNED").any())
    ]


def omitted_panel_notes(trials: pd.DataFrame, target: float | None, *, can_prune: bool | None = None) -> list[str]:
    """Why :func:`figure_panels` left a panel out (``can_prune=False``: the problem has no pruner)."""
    drawn = figure_panels(trials, target)
    notes = []
    if "to_target" not in drawn:
        notes.append("No target given (hpo compare --target), so there is no trials-to-target panel "
                     "or ranking by time to target.")
    if "pruned" not in drawn:
        notes.append("No pruned-fraction panel: " + (
            "these objectives report no intermediate values, so nothing can be pruned."
            if can_prune is False else "no trial was pruned."))
    return notes


def comparison_figure(
    trials: pd.DataFrame, direction: str, target: float | None, title: str = ""
) -> go.Figure:
    """The panels of :func:`figure_panels`; every sampler has one mean curve (named after it) per line panel."""
    panels = figure_panels(trials, target)
    rows = math.ceil(len(panels) / 2)
    figure = make_subplots(rows=rows, cols=2, subplot_titles=[PANELS[key] for key in panels],
                           vertical_spacing=0.27 / rows, horizontal_spacing=0.1)
    place = {key: {"row": index // 2 + 1, "col": index % 2 + 1} for index, key in enumerate(panels)}
    palette = plotly.colors.qualitative.Plotly
    samplers = list(dict.fromkeys(trials["sampler"]))
    to_target = trials_to_target(trials, direction, target)
    budget = int(trials["number"].max()) + 1 if len(trials) else 0
    for index, sampler in enumerate(samplers):
        color = palette[index % len(palette)]
        rows_of = trials[trials["sampler"] == sampler]
        _add_best_by_trial(figure, rows_of, sampler, color, place["by_trial"])
        _add_best_by_time(figure, rows_of, sampler, color, direction, place["by_time"])
        final = rows_of.groupby("seed")["best_so_far"].last()
        figure.add_trace(
            go.Box(y=final, name=sampler, marker_color=color, boxpoints="all", showlegend=False),
            **place["final"],
        )
        if "to_target" in place:
            _add_to_target(figure, to_target[to_target["sampler"] == sampler], sampler, color, budget,
                           place["to_target"])
        if "pruned" in place:
            figure.add_trace(
                go.Bar(x=[sampler], y=[float((rows_of["state"] == "PRUNED").mean())], marker_color=color,
                       name=sampler, showlegend=False),
                **place["pruned"],
            )
        overhead = rows_of.groupby("number")["sampler_s"].mean() * 1000
        figure.add_trace(
            go.Scatter(x=overhead.index + 1, y=overhead.to_numpy(), mode="lines", name=sampler,
                       line={"color": color, "width": 1}, legendgroup=sampler, showlegend=False),
            **place["overhead"],
        )
    goal = "higher is better" if direction == "maximize" else "lower is better"
    target_text = f", target {target:g}" if target is not None else ", no target given"
    figure.update_layout(
        title=f"{title} ({goal}{target_text})" if title else f"{goal}{target_text}",
        height=PANEL_HEIGHT * rows + 120, template="plotly_white", legend={"title": "sampler"},
    )
    figure.update_xaxes(title_text="trial", **place["by_trial"])
    figure.update_xaxes(title_text="seconds since the study started", **place["by_time"])
    figure.update_xaxes(title_text="trial", **place["overhead"])
    figure.update_yaxes(type="log", **place["overhead"])
    if "pruned" in place:
        figure.update_yaxes(range=[0, 1], **place["pruned"])
    if "to_target" in place:
        figure.update_yaxes(title_text="trials", range=[0, not_reached_level(budget) * 1.15], **place["to_target"])
    return figure


def not_reached_level(budget: int) -> float:
    """Height of the "not reached" marks in the trials-to-target panel: clear of any seed that
    reached the target on its last trial."""
    return 1.12 * budget + 1


def _add_to_target(
    figure: go.Figure, needed: pd.DataFrame, sampler: str, color: str, budget: int, where: Mapping[str, int]
) -> None:
    """Box of the trials needed by the seeds that reached the target; an x above the budget, labelled
    with the mean best value, for each seed that did not."""
    reached = needed.dropna(subset=["trials_to_target"])
    label = f"{sampler} ({len(reached)}/{len(needed)})"
    figure.add_trace(
        go.Box(x=[label] * len(reached), y=reached["trials_to_target"], name=label, marker_color=color,
               boxpoints="all", showlegend=False),
        **where,
    )
    missed = needed[needed["trials_to_target"].isna()]
    if missed.empty:
        return
    text = [""] * len(missed)
    text[0] = f"not reached<br>mean best {missed['best'].mean():.4g}" if len(missed) == len(needed) else "not reached"
    figure.add_trace(
        go.Scatter(
            x=[label] * len(missed), y=[not_reached_level(budget)] * len(missed), mode="markers+text", text=text,
            textposition="bottom center", marker={"symbol": "x", "size": 10, "color": color},
            customdata=np.stack([missed["seed"].to_numpy(), missed["best"].to_numpy()], axis=1),
            hovertemplate="seed %{customdata[0]}: not reached, best %{customdata[1]:.4g}<extra></extra>",
            name=f"{sampler} not reached", showlegend=False,
        ),
        **where,
    )


def _add_best_by_trial(
    figure: go.Figure, rows: pd.DataFrame, sampler: str, color: str, where: Mapping[str, int]
) -> None:
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
        **where,
    )
    figure.add_trace(
        go.Scatter(x=x, y=mean, mode="lines", name=sampler, line={"color": color}, legendgroup=sampler),
        **where,
    )


def _add_best_by_time(
    figure: go.Figure, rows: pd.DataFrame, sampler: str, color: str, direction: str, where: Mapping[str, int]
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
        **where,
    )


def _transparent(color: str, alpha: float = 0.15) -> str:
    red, green, blue = plotly.colors.hex_to_rgb(color)
    return f"rgba({red},{green},{blue},{alpha})"


def table_html(frame: pd.DataFrame) -> str:
    """A table that scrolls inside its own box when it is wider than the page."""
    return ("<div class='scroll'>"
            + frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)
            + "</div>")


def ranking_table(ranking: pd.DataFrame, target: float | None) -> pd.DataFrame:
    """:func:`hpo.compare.rank_samplers` as shown: "not reached (best X)" where a sampler never got there."""
    shown = ranking.copy()
    shown["sampler_options"] = shown["sampler_options"].replace({"{}": "defaults"})
    if target is None:
        return shown.drop(columns=["rank_by_target", "reached_target", "trials_to_target_median",
                                   "seconds_to_target_median"])
    never = shown["reached_target"].fillna(0) <= 0
    shown["reached_target"] = [
        f"{int(reached)}/{int(seeds)}" for reached, seeds in zip(shown["reached_target"].fillna(0), shown["seeds"])
    ]
    for column in ("trials_to_target_median", "seconds_to_target_median"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}").astype(object)
    shown.loc[never, "trials_to_target_median"] = [
        f"not reached (mean best {best:.4g})" for best in shown.loc[never, "best_mean"]]
    return shown


def comparison_html(
    trials: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    direction: str,
    target: float | None,
    title: str = "",
    budgets_table: pd.DataFrame | None = None,
    can_prune: bool | None = None,
    figure_id: str = "comparison-figure",
) -> str:
    """The comparison as an HTML fragment: verdict, ranking (with the sampler options), notes on
    left-out panels, the figure, the full summary and the best value by budget."""
    ranking = rank_samplers(summary, direction)
    verdict_html = "<br>".join(html.escape(line) for line in verdict(ranking, direction, target))
    notes = "".join(f"<p class='note'>{html.escape(note)}</p>"
                    for note in omitted_panel_notes(trials, target, can_prune=can_prune))
    figure = comparison_figure(trials, direction, target, title)
    parts = [
        f"<p class='verdict' id='verdict'>{verdict_html}</p>",
        "<h2>Ranking</h2>",
        "<p>rank_by_best: mean final best over seeds. rank_by_target: most seeds that reached the target, "
        "then fewest trials, then fewest seconds. sampler_options: the options each sampler ran with; "
        "every other option has the sampler's default.</p>",
        f"<div id='ranking'>{table_html(ranking_table(ranking, target))}</div>",
        notes,
        figure.to_html(full_html=False, include_plotlyjs=False, div_id=figure_id),
        f"<h2>Summary</h2><div id='summary'>{table_html(summary)}</div>",
    ]
    if budgets_table is not None:
        parts.append(f"<h2>Best value by budget</h2>{table_html(budgets_table)}")
    return "\n".join(parts)


def write_comparison_report(
    trials: pd.DataFrame,
    summary: pd.DataFrame,
    out_dir: str | Path,
    *,
    direction: str,
    target: float | None,
    title: str,
    budgets_table: pd.DataFrame | None = None,
    can_prune: bool | None = None,
    plotly_js: str = "shared",
) -> dict[str, Path]:
    """Write ``trials.csv``, ``summary.csv`` and ``report.html`` into ``out_dir``; return their paths.

    ``plotly_js``: see :mod:`hpo.plotly_js` (``shared`` also writes ``plotly.min.js`` there).
    """
    from hpo.browse._plotly_js import plotly_js_tag

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"trials": out / "trials.csv", "summary": out / "summary.csv", "report": out / "report.html"}
    trials.to_csv(paths["trials"], index=False)
    summary.to_csv(paths["summary"], index=False)
    body = comparison_html(trials, summary, direction=direction, target=target,
                           budgets_table=budgets_table, can_prune=can_prune)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_STYLE}</style>{plotly_js_tag(plotly_js, out)}</head><body>"
        f"{plotly_missing_html()}<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    paths["report"].write_text(page, encoding="utf-8")
    return paths
