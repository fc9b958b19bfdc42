"""Static HTML reports of studies: the answer first, then the figures, the metadata folded at the end.

One page (plotly.js loaded as :mod:`hpo.browse._plotly_js` says: by default a shared ``plotly.min.js``
beside it, nothing fetched from the network; a visible "plotly.min.js missing" line that the page
removes once plotly.js loaded) holds, per study:

1. the headline (:func:`hpo.results.compute_headline`): the winner, its gain over the reference trial
   and the runner-up, the final model's test metrics, the export and retrain commands;
2. learning curves: every metric per epoch of the best complete trials, the pruned trials that got
   furthest dashed and ending in an x;
3. the best trial's validation confusion matrix at full width, coloured by the share of the true
   tissue's samples, with its ten largest confusions as text;
4. parameter importances (fANOVA), with a warning below :data:`IMPORTANCE_MIN_TRIALS` complete trials;
5. test metrics of the final model and the commands (export, retrain, run again, dashboard);
6. the top trials, optimisation history, parallel coordinates, slice plot (wrapped into rows of
   :data:`SLICE_COLUMNS` panels), intermediate values and timeline;
7. the study's metadata (its user attributes), folded.

Where a figure cannot say anything yet the page says so instead. A comparison group from
``hpo compare`` (studies ``{prefix}/{sampler}/seed{seed}`` with user attribute ``comparison``) gets
the comparison figure and summary of :mod:`hpo.browse._compare_report` first, then one folded
section per study.
"""

from __future__ import annotations

import copy
import html
import json
import logging
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from hpo.browse._compare_report import PAGE_STYLE, plotly_missing_html, table_html
from hpo.results import (
    CONFUSION_KEY,
    HISTORY_KEY,
    IMPORTANCE_MIN_TRIALS,
    Counts,
    Headline,
    all_trials,
    compute_headline,
    confusion_matrix_figure,
    curve_trials,
    find_studies,
    fmt,
    learning_curves_figure,
    ranked_trials,
    standings_of,
    top_confusions,
)
from hpo.storage import read_only_view, redact, resolve_storage_url, storage_url_of, study_storage

logger = logging.getLogger(__package__)

FIGURES: tuple[tuple[str, str], ...] = (
    ("history", "Optimisation history"),
    ("importances", "Parameter importances"),
    ("parallel", "Parallel coordinates"),
    ("slice", "Slice plot"),
    ("intermediate", "Intermediate values (pruning)"),
    ("timeline", "Timeline (workers in parallel)"),
)
"""Figure key and heading, in page order; each study's figure ``key`` has the element id ``{slug}-{key}``."""

TOP_TRIALS_DEFAULT = 10
TOP_CONFUSIONS = 10
"""Below :data:`IMPORTANCE_MIN_TRIALS` completed trials, fANOVA's importances (a random forest fitted on
the trials) mostly reflect which points happened to be drawn; the report says so. With ~20 trials and
a handful of parameters the forest has a few points per parameter and split to learn from."""
SLICE_COLUMNS = 4
"""Slice-plot panels per row: Optuna draws one 300 px panel per parameter side by side."""
SLICE_ROW_HEIGHT = 300


@dataclass(frozen=True)
class Figure:
    """A rendered figure (``figure`` set) or the reason there is none (``note`` set)."""

    key: str
    title: str
    figure: Any | None = None
    note: str | None = None
    warning: str | None = None
    """Drawn, but read with care (e.g. importances from few trials)."""
    caption: str | None = None
    """What the figure was drawn from, when not from every trial (importances of a large study)."""


def _completed(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> list[FrozenTrial]:
    if trials is None:
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [trial for trial in trials if trial.state == TrialState.COMPLETE]


def _target(study: optuna.Study) -> tuple[Callable[[FrozenTrial], float] | None, str]:
    """Single objective: Optuna's default. Several: the first objective, named."""
    metric = str(study.user_attrs.get("metric") or "Objective Value")
    if len(study.directions) == 1:
        return None, metric
    return (lambda trial: trial.values[0]), f"{metric} (objective 0)"


def _varying_params(trials: Sequence[FrozenTrial], *, in_every_trial: bool = False) -> list[str]:
    """Parameters that took more than one value; ``in_every_trial``: only those all trials have
    (conditional parameters would make Optuna drop the trials without them)."""
    names = sorted({name for trial in trials for name in trial.params})
    if in_every_trial:
        names = [name for name in names if all(name in trial.params for trial in trials)]
    return [
        name for name in names
        if len({json.dumps(trial.params.get(name), default=str) for trial in trials if name in trial.params}) > 1
    ]


IMPORTANCE_SAMPLE = 500
"""fANOVA fits a random forest whose cost grows faster than the trials (76 s of an 87 s report at 1,000
trials): importances come from at most this many completed trials, the most recent (the sampler's
latest view of the space), and the page says so."""
SAMPLED_FOREST = {"n_trees": 16, "max_depth": 8}
"""The forest fitted on a sample (Optuna's default: 64 trees, depth 64): 500 trials and 8 parameters in
about 1 s instead of 10-40 s, with importances within a few hundredths of the default forest's."""
CURVES_SHOWN = 500
"""The intermediate-values and parallel-coordinates figures draw one line per trial: at most this many,
the most recent (10,000 lines took 45 s to build and make a page no browser draws well)."""


def importance_sample(completed: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The completed trials fANOVA is fitted on: all of them, or the :data:`IMPORTANCE_SAMPLE` most recent."""
    ordered = sorted(completed, key=lambda trial: trial.number)
    return ordered[-IMPORTANCE_SAMPLE:]


def importance_warning(completed: int) -> str | None:
    """The caveat for importances from ``completed`` trials, or ``None`` from enough of them."""
    if completed >= IMPORTANCE_MIN_TRIALS:
        return None
    return (f"only {completed} completed trials: parameter importances from fewer than {IMPORTANCE_MIN_TRIALS} "
            "mostly reflect which points happened to be drawn; do not rank parameters by them yet")


def wrap_subplots(figure: Any, columns: int = SLICE_COLUMNS, row_height: int = SLICE_ROW_HEIGHT) -> Any:
    """Re-place the side-by-side subplots of an Optuna figure (slice plot) into rows of ``columns``.

    Each subplot keeps its axes (log, categorical, shared y range); only their domains move. The
    figure's fixed width is dropped, so it fills its container; the height grows with the rows.
    """
    from plotly.subplots import make_subplots

    count = sum(1 for key in figure.layout.to_plotly_json() if re.fullmatch(r"xaxis\d*", key))
    if count <= 1:
        return figure
    rows, cols = math.ceil(count / columns), min(count, columns)
    height = row_height * rows + 80
    grid = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.04,
                         vertical_spacing=min(0.3, 90 / height) if rows > 1 else 0.0)
    y_title = figure.layout.yaxis.title.text
    for index in range(count):
        suffix = str(index + 1) if index else ""
        figure.layout[f"xaxis{suffix}"].domain = grid.layout[f"xaxis{suffix}"].domain
        figure.layout[f"yaxis{suffix}"].domain = grid.layout[f"yaxis{suffix}"].domain
        if index % cols == 0:
            figure.layout[f"yaxis{suffix}"].update(showticklabels=True, title_text=y_title)
    figure.update_layout(width=None, height=height, autosize=True)
    return figure


def study_figures(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> list[Figure]:
    """Every figure of :data:`FIGURES` for ``study``, or a note saying why it has none."""
    from optuna import visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    trials = all_trials(study) if trials is None else trials
    completed = _completed(study, trials)
    target, target_name = _target(study)
    targeted = {"target": target, "target_name": target_name}
    varying = _varying_params(completed)
    common = _varying_params(completed, in_every_trial=True)
    no_completed = f"no completed trial yet ({len(trials)} trials in other states)"

    sample = importance_sample(completed)
    sampled = len(sample) < len(completed)
    sample_common = _varying_params(sample, in_every_trial=True) if sampled else common
    sample_caption = (f"fANOVA on the {len(sample)} most recent of {len(completed)} completed trials "
                      f"(a bounded sample; {SAMPLED_FOREST['n_trees']} trees of depth at most "
                      f"{SAMPLED_FOREST['max_depth']}, seed 0)") if sampled else None
    reporting = [trial for trial in trials if trial.intermediate_values]
    curves_caption = (f"the {CURVES_SHOWN} most recent of {len(reporting)} trials with intermediate values"
                      if len(reporting) > CURVES_SHOWN else None)
    lines = sorted(completed, key=lambda trial: trial.number)[-CURVES_SHOWN:]
    lines_caption = (f"the {len(lines)} most recent of {len(completed)} completed trials"
                     if len(lines) < len(completed) else None)
    captions = {"importances": sample_caption, "intermediate": curves_caption, "parallel": lines_caption}

    views: dict[str, optuna.Study] = {}

    def every() -> optuna.Study:
        """The study's trials, read once, in a view Optuna's figures read without deep copies."""
        if "every" not in views:
            views["every"] = read_only_view(trials, study.directions)
        return views["every"]

    def importances() -> Any:
        if not sampled:
            return vis.plot_param_importances(every(), evaluator=FanovaImportanceEvaluator(seed=0), params=common,
                                              **targeted)
        return vis.plot_param_importances(read_only_view(sample, study.directions), params=sample_common,
                                          evaluator=FanovaImportanceEvaluator(seed=0, **SAMPLED_FOREST), **targeted)

    def intermediate() -> Any:
        shown = every() if curves_caption is None else read_only_view(reporting[-CURVES_SHOWN:], study.directions)
        return vis.plot_intermediate_values(shown)

    builders: dict[str, tuple[str | None, Callable[[], Any]]] = {
        "history": (no_completed if not completed else None,
                    lambda: vis.plot_optimization_history(every(), **targeted)),
        "importances": (
            no_completed if not completed
            else "parameter importances need at least 2 completed trials" if len(completed) < 2
            else "no parameter that every completed trial has took more than one value" if not sample_common
            else None,
            importances,
        ),
        "parallel": (
            no_completed if not completed
            else "no parameter that every completed trial has took more than one value" if not common else None,
            lambda: vis.plot_parallel_coordinate(every() if lines_caption is None else
                                                 read_only_view(lines, study.directions), params=common, **targeted),
        ),
        "slice": (no_completed if not completed else "the study has no parameters" if not varying else None,
                  lambda: wrap_subplots(vis.plot_slice(every(), params=varying, **targeted))),
        "intermediate": (
            "several objectives: Optuna records no intermediate values" if len(study.directions) > 1
            else "no trial reported intermediate values (this model has no per-step reports)"
            if not reporting else None,
            intermediate,
        ),
        "timeline": ("no trial yet" if not trials else None, lambda: vis.plot_timeline(every())),
    }
    figures = []
    for key, title in FIGURES:
        note, build = builders[key]
        if note is not None:
            figures.append(Figure(key, title, note=note))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                drawn = build()
            drawn.update_layout(title=None, margin={"t": 30})  # the page's heading names the figure
            caveat = importance_warning(len(completed)) if key == "importances" else None
            if caveat:
                logger.warning("%s: %s", study.study_name, caveat)
            figures.append(Figure(key, title, figure=drawn, warning=caveat, caption=captions.get(key)))
        except Exception as error:  # a figure Optuna cannot draw for this study must not cost the report
            logger.warning("%s: %s not drawn: %s", study.study_name, title, error)
            figures.append(Figure(key, title, note=f"not drawn: {error}"))
    return figures


def top_trials(study: optuna.Study, top: int = TOP_TRIALS_DEFAULT,
               trials: Sequence[FrozenTrial] | None = None) -> pd.DataFrame:
    """The ``top`` best completed trials: number, value(s), duration, parameters, recorded metrics."""
    rows = []
    for trial in ranked_trials(_completed(study, trials), study.directions)[:top]:
        row: dict[str, Any] = {"trial": trial.number}
        if len(trial.values) == 1:
            row["value"] = trial.values[0]
        else:
            row.update({f"value {index}": value for index, value in enumerate(trial.values)})
        row["seconds"] = trial.duration.total_seconds() if trial.duration else np.nan
        row.update({f"param {name}": value for name, value in trial.params.items()})
        row.update({
            name: value for name, value in trial.user_attrs.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        })
        if "device" in trial.user_attrs:
            row["device"] = trial.user_attrs["device"]
        rows.append(row)
    return pd.DataFrame(rows)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "study"


def _format_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 400 else text[:400] + "…"


def _study_header(study: optuna.Study) -> str:
    """One row per fact: direction(s), trial counts, then the user attributes (the ``direction``
    attribute of study files is the first row already)."""
    c = Counts.of(study)
    directions = ", ".join(direction.name.lower() for direction in study.directions)
    attrs = {"direction" if len(study.directions) == 1 else "directions": directions,
             "trials": f"{c.complete} complete, {c.pruned} pruned, {c.failed} failed, {c.running} running, "
                       f"{c.waiting} waiting"}
    attrs.update({key: _format_value(value) for key, value in sorted(study.user_attrs.items())
                  if key not in ("direction", "directions")})
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in attrs.items())
    return f"<div class='scroll'><table class='study-header'>{rows}</table></div>"


def commands_storage(study: optuna.Study) -> str | None:
    """The ``--storage`` the report's commands name: the study's storage unless it is the default one."""
    url = storage_url_of(study_storage(study))
    if url is None or url == resolve_storage_url(None):
        return None
    return redact(url)


def headline_html(head: Headline, slug: str) -> str:
    """The headline as the first thing on the page: winner, gains, test metrics, commands."""
    if head.winner is None:
        return f"<section class='headline' id='{slug}-headline'><p>{html.escape(head.winner_text())}</p></section>"
    c = head.counts
    parts = [
        f"<p class='winner'><b>Winner: trial {head.winner.number}</b>, {html.escape(head.metric)} "
        f"<b>{fmt(head.winner.value)}</b> ({head.direction})</p>",
        f"<p class='gains'>{html.escape(head.gains_text())}</p>",
    ]
    if head.selected_text():  # the trial hpo export exports, when the noise rule kept the defaults or compared
        parts.append(f"<p class='selected'>Selected (what <code>hpo export</code> exports): "
                     f"{html.escape(head.selected_text())}</p>")
    if head.test_text():
        parts.append(f"<p class='test'>Test: {html.escape(head.test_text())}</p>")
    parts.append(f"<p>{c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, {c.get('failed', 0)} failed trials</p>")
    parts.append(f"<pre class='commands'>{html.escape(head.export_command())}\n{html.escape(head.retrain_command())}</pre>")
    return f"<section class='headline' id='{slug}-headline'>{''.join(parts)}</section>"


def _history_of(trial: FrozenTrial, metric: str) -> list[dict[str, float]]:
    """The trial's per-epoch metrics, else its reported values (one metric per step: folds, subsets)."""
    rows = trial.system_attrs.get(HISTORY_KEY)
    if rows:
        return rows
    return [{"epoch": step, metric: value} for step, value in sorted(trial.intermediate_values.items())
            if value is not None and math.isfinite(value)]


def learning_curves_html(study: optuna.Study, trials: Sequence[FrozenTrial], metric: str, slug: str) -> str:
    """The learning-curve figure (best complete trials; pruned ones dashed, ending in x), or why there is none."""
    if len(study.directions) != 1:
        return f"<p class='note' id='{slug}-curves-note'>several objectives: no learning curves</p>"
    with_steps = []
    for trial in trials:
        rows = _history_of(trial, metric)
        if rows and trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            with_steps.append(_with_history(trial, rows))
    shown = curve_trials(standings_of(with_steps, study.directions))
    if not shown:
        return (f"<p class='note' id='{slug}-curves-note'>no trial reported per-epoch values "
                "(this model has no per-step reports)</p>")
    import plotly.io

    figure = learning_curves_figure(shown, metric=metric, n_complete=sum(t.state == TrialState.COMPLETE for t in trials))
    figure["layout"].update(title=None, margin={"l": 60, "r": 10, "t": 40, "b": 45}, height=480)
    if not any(t.system_attrs.get(HISTORY_KEY) for t in trials):
        figure["layout"]["xaxis"]["title"] = {"text": "step (the reported value)"}
    return plotly.io.to_html(figure, full_html=False, include_plotlyjs=False, div_id=f"{slug}-curves", validate=False)


def _with_history(trial: FrozenTrial, rows: list[dict[str, float]]) -> FrozenTrial:
    """``trial`` as the learning-curve figure reads it: with per-epoch rows (its reported values, if need be)."""
    if trial.system_attrs.get(HISTORY_KEY):
        return trial
    shown = copy.copy(trial)
    shown.system_attrs = {**trial.system_attrs, HISTORY_KEY: rows}
    return shown


def confusion_html(ranked: Sequence[FrozenTrial], metric: str, slug: str) -> str:
    """The best trial's validation confusion matrix at full width, and its largest confusions as text."""
    trial = next((t for t in ranked if t.system_attrs.get(CONFUSION_KEY)), None)
    if trial is None:
        return f"<p class='note' id='{slug}-confusion-note'>no trial recorded a validation confusion matrix</p>"
    confusion = trial.system_attrs[CONFUSION_KEY]
    n = len(confusion["tissues"])
    whose = "the best trial" if trial is ranked[0] else f"the best trial that recorded one (the winner, trial {ranked[0].number}, did not)"
    figure = confusion_matrix_figure(confusion, title=f"trial {trial.number} ({metric} {fmt(trial.value)}), validation split",
                                     height=max(420, 20 * n + 220))
    cells = top_confusions(confusion, TOP_CONFUSIONS)
    listed = "".join(f"<li>{html.escape(true)} → {html.escape(predicted)}: {count} of {total} "
                     f"({count / max(total, 1):.0%})</li>" for true, predicted, count, total in cells)
    text = (f"<p>{'Largest confusions' if cells else 'No confusion'} of {whose} (true → predicted: samples of the true "
            f"tissue):</p><ol id='{slug}-confusions'>{listed}</ol>" if cells else
            f"<p id='{slug}-confusions'>No confusion: every validation sample of {whose} is on the diagonal.</p>")
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"{slug}-confusion", config={"responsive": True}) + text


def test_metrics_html(head: Headline, slug: str) -> str:
    """The final model's test metrics (and the reference's), or how to get them."""
    if head.final is None or not head.final.metrics:
        return (f"<p class='note' id='{slug}-test-note'>no final model recorded yet: export the winner and retrain it "
                f"(commands below); <code>hpo demo</code> records its test metrics in the study</p>")
    names = list(head.final.metrics)
    rows = [{"metric": name, "final model": head.final.metrics[name],
             **({"the defaults": head.final.reference_metrics.get(name, np.nan)} if head.final.reference_metrics else {})}
            for name in names]
    whose = f"trial {head.final.trial}" if head.final.trial is not None else "the exported trial"
    return (f"<p>Final model of {whose}, trained on {html.escape(head.final.train_split)}, evaluated once on the "
            f"held-out test split ({html.escape(head.final.path)}).</p><div id='{slug}-test'>{table_html(pd.DataFrame(rows))}</div>")


def commands_html(study: optuna.Study, head: Headline, slug: str) -> str:
    """Export, retrain, run again (this study, with its overrides), the dashboard."""
    import shlex

    storage = f" --storage {shlex.quote(head.storage)}" if head.storage else ""
    lines = []
    if head.winner is not None:
        lines += [f"{head.export_command()}      # the winner's configuration", f"{head.retrain_command()}       # the final model"]
    attrs = study.user_attrs
    if attrs.get("study_file"):
        again = [f"hpo run {shlex.quote(str(attrs['study_file']))}", f"--study-name {shlex.quote(study.study_name)}"]
        again += [f"--set {shlex.quote(str(a))}" for a in attrs.get("study_overrides") or []]
        lines.append(" ".join(again) + storage + "   # more trials: --n-trials N")
    lines.append(f"hpo dashboard{storage}")
    return f"<pre class='commands' id='{slug}-commands'>{html.escape(chr(10).join(lines))}</pre>"


def study_section(study: optuna.Study, *, top: int = TOP_TRIALS_DEFAULT, level: int = 2,
                  heading: bool = True) -> str:
    """HTML of one study: the headline first, curves, confusions, importances, test metrics, commands,
    the top trials and Optuna's figures, and the metadata folded at the end.

    ``heading=False`` leaves out the study's own heading (the page title or a folded section's
    summary already names it).
    """
    slug = _slug(study.study_name)
    trials = all_trials(study)  # read once, with plain queries on an RDB storage
    attrs = study.user_attrs
    head = compute_headline(study, trials=trials, user_attrs=attrs, storage=commands_storage(study))
    metric = head.metric
    title = f"<h{level} id='{slug}'>Study {html.escape(study.study_name)}</h{level}>" if heading else ""
    sub = f"h{level + 1}"
    figures = {figure.key: figure for figure in study_figures(study, trials)}
    parts = [title, headline_html(head, slug)]
    parts += [f"<{sub}>Learning curves</{sub}>", learning_curves_html(study, trials, metric, slug)]
    ranked = ranked_trials(trials, study.directions) if len(study.directions) == 1 else []
    if ranked:
        parts += [f"<{sub}>Confusion matrix (validation, colour: share of the true tissue)</{sub}>",
                  confusion_html(ranked, metric, slug)]
    parts.append(_figure_html(figures["importances"], slug, sub))
    parts += [f"<{sub}>Test metrics</{sub}>", test_metrics_html(head, slug)]
    parts += [f"<{sub}>Commands</{sub}>", commands_html(study, head, slug)]
    parts.append(f"<{sub}>Top trials</{sub}>")
    table = top_trials(study, top, trials)
    parts.append(table_html(table) if not table.empty else "<p class='note'>no completed trial yet</p>")
    parts += [_figure_html(figure, slug, sub) for key, figure in figures.items() if key != "importances"]
    parts.append(f"<details id='{slug}-metadata'><summary>Study metadata (its user attributes)</summary>"
                 f"{_study_header(study)}</details>")
    return "\n".join(parts)


def _figure_html(figure: Figure, slug: str, sub: str) -> str:
    parts = [f"<{sub}>{html.escape(figure.title)}</{sub}>"]
    if figure.warning:
        parts.append(f"<p class='note warning' id='{slug}-{figure.key}-warning'>{html.escape(figure.warning)}</p>")
    if figure.caption:
        parts.append(f"<p class='note' id='{slug}-{figure.key}-caption'>{html.escape(figure.caption)}</p>")
    if figure.figure is not None:
        parts.append(figure.figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"{slug}-{figure.key}"))
    else:
        parts.append(f"<p class='note' id='{slug}-{figure.key}-note'>{html.escape(figure.note or '')}</p>")
    return "".join(parts)


def comparison_section(studies: Sequence[optuna.Study], name: str) -> str:
    """The sampler comparison of :mod:`hpo.compare_report` (verdict, ranking, figure, summary) for a group."""
    from hpo.browse._compare_report import comparison_html
    from hpo.compare import summarize, trials_table

    directions = {study.directions[0].name.lower() for study in studies}
    if len(directions) != 1 or any(len(study.directions) != 1 for study in studies):
        return "<p class='note'>the group mixes directions or objectives: no common comparison figure</p>"
    direction = directions.pop()
    tables = []
    options: dict[str, Any] = {}
    for study in studies:
        sampler = str(study.user_attrs.get("sampler", study.study_name))
        options.setdefault(sampler, study.user_attrs.get("sampler_options") or {})
        tables.append(trials_table(study, comparison=name, problem=str(study.user_attrs.get("problem", "")),
                                   sampler=sampler, seed=study.user_attrs.get("seed", 0), direction=direction))
    trials = pd.concat(tables, ignore_index=True)
    target = studies[0].user_attrs.get("target")
    target = float(target) if isinstance(target, (int, float)) else None
    summary = summarize(trials, direction, target, options)
    # no trial reported an intermediate value (the test functions): nothing could have been pruned
    can_prune = any(trial.intermediate_values for study in studies for trial in study.get_trials(deepcopy=False))
    return comparison_html(trials, summary, direction=direction, target=target, can_prune=can_prune)


def render_report(studies: Sequence[optuna.Study], *, title: str, top: int = TOP_TRIALS_DEFAULT,
                  comparison: str | None = None, plotly_js_tag: str | None = None) -> str:
    """The whole page as a string; ``plotly_js_tag`` loads plotly.js (default: embedded once,
    see :func:`hpo.plotly_js.plotly_js_tag`)."""
    from hpo.browse._plotly_js import plotly_js_tag as make_tag

    single = comparison is None and len(studies) == 1
    body = [] if single else [f"<h1>{html.escape(title)}</h1>"]
    if comparison is not None:
        try:
            body.append(comparison_section(studies, comparison))
        except Exception as error:
            logger.warning("comparison %s: figure not drawn: %s", comparison, error)
            body.append(f"<p class='note'>comparison figure not drawn: {html.escape(str(error))}</p>")
        body.append(f"<h2 id='studies'>Studies ({len(studies)})</h2>")
        for study in studies:
            body.append(f"<details id='{_slug(study.study_name)}'><summary>{html.escape(study.study_name)}</summary>"
                        f"{study_section(study, top=top, level=3, heading=False)}</details>")
    elif single:
        body.append(study_section(studies[0], top=top, level=1))
    else:
        body += [study_section(study, top=top) for study in studies]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style>"
        f"{plotly_js_tag if plotly_js_tag is not None else make_tag('inline')}</head><body>"
        + plotly_missing_html() + "\n".join(body) + "</body></html>"
    )


def write_report(storage: optuna.storages.BaseStorage, name: str, out_dir: str | Path, *,
                 top: int = TOP_TRIALS_DEFAULT, plotly_js: str = "shared") -> Path:
    """Write ``out_dir/report.html`` for the study or comparison group ``name``; returns its path.

    ``plotly_js``: ``shared`` (also writes ``out_dir/plotly.min.js``), ``inline`` or ``cdn``.
    """
    from hpo.browse._plotly_js import plotly_js_tag

    studies = find_studies(storage, name)
    is_group = len(studies) > 1 or studies[0].study_name != name
    out = Path(out_dir)
    tag = plotly_js_tag(plotly_js, out)
    page = render_report(studies, title=f"{'Comparison' if is_group else 'Study'} {name}", top=top,
                         comparison=name if is_group else None, plotly_js_tag=tag)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
