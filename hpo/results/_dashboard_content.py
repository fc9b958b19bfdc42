"""What optuna-dashboard shows beside Optuna's own data, written with optuna-dashboard's own API.

Everything here lives in the storage, so plain ``optuna-dashboard <storage URL>`` shows it
(no artifact store needed):

- :func:`describe_study` — the metric's name instead of "Objective 0"
  (``study.set_metric_names``) and the study note (``optuna_dashboard.save_note``): the
  description, the command and overrides that ran, and the effective study file;
- :func:`record_trial_history` — a trial's per-epoch metrics: kept in a trial system attribute
  (:data:`HISTORY_KEY`) and written as a table into the trial's note;
- :func:`refresh_learning_curves` — one interactive plotly figure on the study page
  (``optuna_dashboard.save_plotly_graph_object``): every metric per epoch (a menu picks the
  metric), one line per trial, for the :data:`CURVES_TRIALS` best complete trials;
- :func:`refresh_study_figures` — after each complete trial, that figure and a heat map of the
  best trial's validation confusion matrix (kept by :func:`record_confusion_matrix`).

None of them raises: what the dashboard shows must never cost a trial.
"""

from __future__ import annotations

import json
import logging
import math
import shlex
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import optuna
import tomli_w
from optuna.trial import FrozenTrial, TrialState

from hpo.results._trials import best_trial, ranked_trials
from hpo.storage import best_effort, cached_trial, study_storage, trial_id
from hpo.study import StudySpec, apply_overrides, format_overrides

logger = logging.getLogger(__package__)

HISTORY_KEY = "hpo:history"
"""Trial system attribute: the per-epoch metrics, ``[{"epoch": 1, "train_loss": ..., ...}, ...]``."""

CURVES_FIGURE_ID = "learning-curves"
"""The study's one learning-curve figure (overwritten on every refresh)."""

CONFUSION_KEY = "hpo:confusion"
"""Trial system attribute of a trial that was the best when it ended: its validation confusion matrix."""

CONFUSION_FIGURE_ID = "confusion-matrix"
"""The study's figure of the best trial's confusion matrix."""

CURVES_TRIALS = 10
"""How many of the best complete trials the learning-curve figure shows."""

_METRIC_ORDER = ("val_", "train_")


def describe_study(study: optuna.Study, spec: StudySpec) -> None:
    """Name the objective after the metric and write the study note (description, overrides, effective file)."""
    name_objective(study, spec.metric)
    with best_effort(f"study {study.study_name}: note not written", logger):
        from optuna_dashboard import save_note

        save_note(study, study_note(spec))


def name_objective(study: optuna.Study, metric: str) -> None:
    """``study.set_metric_names([metric])`` unless the study has names already."""
    with best_effort(f"study {study.study_name}: metric name not set", logger):
        if study.metric_names is None:
            with warnings.catch_warnings():  # experimental in Optuna, and what optuna-dashboard reads
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([metric])


def effective_study_text(spec: StudySpec) -> str:
    """The study that runs: the file's text as written, or, with overrides, the overridden content as TOML."""
    if not spec.overrides:
        return spec.text
    try:
        content = apply_overrides(tomllib.loads(spec.text), spec.overrides)
    except (tomllib.TOMLDecodeError, TypeError, ValueError):  # no readable text (a spec made in code)
        return spec.text
    return tomli_w.dumps(content)


def study_note(spec: StudySpec) -> str:
    """The study note in Markdown: what the study is, how it ran, and the effective study file."""
    assignments = format_overrides(spec.overrides)
    command = " \\\n    ".join([f"hpo run {shlex.quote(spec.path or 'STUDY_FILE')}",
                                 *(f"--set {shlex.quote(a)}" for a in assignments)])
    lines = [
        f"## {spec.description or spec.name}",
        "",
        f"**{spec.model}** tuned for **{spec.metric}** ({spec.direction}); "
        f"sampler {spec.sampler.name}, pruner {spec.pruner.name}, "
        f"n_trials = {spec.n_trials if spec.n_trials is not None else 'none (timeout)'}.",
        "",
        "**Overrides:** " + (", ".join(f"`{a}`" for a in assignments) if assignments else "none (the study file as written)"),
        "",
        "**Run again:**",
        "",
        "```bash",
        command,
        "```",
        "",
        "**Effective study file** (the file with the overrides applied):",
        "",
        "```toml",
        effective_study_text(spec).rstrip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def record_trial_history(trial: optuna.Trial, history: Sequence[Mapping[str, float]]) -> None:
    """Keep a running trial's per-epoch metrics for the study figure and write them into its note."""
    rows = _epoch_rows(history)
    if not rows:
        return
    try:
        metric = (trial.study.metric_names or [None])[0]
    except Exception:
        metric = None
    with best_effort(f"trial {trial.number}: history not stored", logger):
        _store_system_attr(trial, HISTORY_KEY, rows)
    with best_effort(f"trial {trial.number}: note not written", logger):
        from optuna_dashboard import save_note

        save_note(trial, trial_note(rows, metric=metric))


def _store_system_attr(trial: optuna.Trial, key: str, value: Any) -> None:
    """Write a trial system attribute and mirror it into the trial's cached state (what ``has_*`` read, no query)."""
    trial.storage.set_trial_system_attr(trial_id(trial), key, value)
    cached = cached_trial(trial)
    if cached is not None:
        cached.system_attrs[key] = value


def has_history(trial: optuna.Trial) -> bool:
    """Whether :func:`record_trial_history` stored this trial's epochs (read from the trial's cached state)."""
    cached = cached_trial(trial)
    return cached is not None and HISTORY_KEY in cached.system_attrs


def trial_note(rows: Sequence[Mapping[str, float]], *, metric: str | None = None) -> str:
    """A Markdown table of every metric per epoch, ``metric`` first (the study page has them as curves)."""
    names = _metric_names(rows, first=metric)
    lines = [
        "**Per-epoch metrics** (curves of the best trials: study page, \"Learning curves\")",
        "",
        "| epoch | " + " | ".join(names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for row in rows:
        cells = [_cell(row.get(name)) for name in names]
        lines.append(f"| {int(row['epoch'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def record_confusion_matrix(trial: optuna.Trial, confusion: Sequence[Sequence[int]], tissues: Sequence[str]) -> None:
    """Keep a running trial's validation confusion matrix (rows true, columns predicted) for the study figure."""
    value = {"tissues": [str(t) for t in tissues], "matrix": [[int(c) for c in row] for row in confusion]}
    with best_effort(f"trial {trial.number}: confusion matrix not stored", logger):
        _store_system_attr(trial, CONFUSION_KEY, value)


def has_study_figures(trial: optuna.Trial) -> bool:
    """Whether the trial recorded anything the study's figures show (read from its cached state, no query)."""
    cached = cached_trial(trial)
    return cached is not None and (HISTORY_KEY in cached.system_attrs or CONFUSION_KEY in cached.system_attrs)


def refresh_study_figures(study: optuna.Study, trial: optuna.Trial) -> None:
    """After ``trial`` completed: redraw the learning curves and, if it is the best trial, its confusion matrix.

    Parallel callers must serialise calls (the worker holds the study's admission lock): figures are written in chunks.
    """
    if has_history(trial):
        refresh_learning_curves(study, finished_trial=trial_id(trial))
    cached = cached_trial(trial)
    confusion = cached.system_attrs.get(CONFUSION_KEY) if cached is not None else None
    if not confusion:
        return
    with best_effort(f"study {study.study_name}: confusion matrix not drawn", logger):
        best = best_trial(study)
        if best is None or best.number != trial.number:
            return  # a better trial finished meanwhile: its matrix is shown
        from optuna_dashboard import save_plotly_graph_object

        metric = (study.metric_names or [study.user_attrs.get("metric", "value")])[0]
        figure = confusion_matrix_figure(confusion, title=f"Confusion matrix: best trial {best.number} "
                                                          f"({metric} {best.value:.4g})")
        save_plotly_graph_object(study, figure, graph_object_id=CONFUSION_FIGURE_ID)


def confusion_matrix_figure(confusion: Mapping[str, Any], *, title: str) -> Any:
    """A heat map of validation counts, true tissue down, predicted across; hover shows the row's share."""
    import plotly.graph_objects as go

    tissues, counts = confusion["tissues"], confusion["matrix"]
    shares = [[c / max(sum(row), 1) for c in row] for row in counts]
    figure = go.Figure(go.Heatmap(
        z=counts, x=tissues, y=tissues, customdata=shares, colorscale="Blues", showscale=False,
        texttemplate="%{z}" if len(tissues) <= 15 else None,
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z} samples (%{customdata:.0%} of the row)<extra></extra>",
    ))
    figure.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}}, template="plotly_white",
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis={"title": {"text": "predicted"}, "side": "bottom", "tickangle": -45, "automargin": True},
        yaxis={"title": {"text": "true"}, "autorange": "reversed", "automargin": True},
    )
    return figure


def refresh_learning_curves(study: optuna.Study, *, finished_trial: int | None = None) -> bool:
    """Redraw the study's learning-curve figure from its best complete trials; True when it was saved.

    With ``finished_trial`` (a trial id) nothing is read or written unless that trial has a
    history (cheap for studies without epochs, e.g. benchmark functions). Callers that run
    in parallel serialise calls (the worker holds the study's admission lock), because the
    figure is written in chunks.
    """
    with best_effort(f"study {study.study_name}: learning curves not redrawn", logger):
        storage = study_storage(study)
        if finished_trial is not None and HISTORY_KEY not in storage.get_trial(finished_trial).system_attrs:
            return False
        trials = ranked_trials(
            [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.system_attrs.get(HISTORY_KEY)],
            study.directions,
        )
        if not trials:
            return False
        shown = trials[:CURVES_TRIALS]
        if finished_trial is not None and all(trial_id(t) != finished_trial for t in shown):
            return False  # the figure would not change
        from optuna_dashboard import save_plotly_graph_object

        metric = (study.metric_names or [study.user_attrs.get("metric", "value")])[0]
        figure = learning_curves_figure(shown, metric=metric, n_complete=len(trials))
        save_plotly_graph_object(study, figure, graph_object_id=CURVES_FIGURE_ID)
        return True
        return False


def learning_curves_figure(trials: Sequence[FrozenTrial], *, metric: str, n_complete: int) -> Any:
    """Every metric per epoch, one coloured line per trial (best first); a menu picks the metric shown.

    optuna-dashboard gives a figure a 450 px high card, so one metric at a time, full size,
    reads better than small multiples; the study's metric is shown first.
    """
    import plotly.colors
    import plotly.graph_objects as go

    histories = {t.number: t.system_attrs[HISTORY_KEY] for t in trials}
    names = _metric_names([row for rows in histories.values() for row in rows], first=metric)
    palette = plotly.colors.qualitative.Plotly
    figure = go.Figure()
    owner: list[str] = []  # the metric of each trace
    for rank, trial in enumerate(trials):
        for name in names:
            points = [(row["epoch"], row[name]) for row in histories[trial.number] if row.get(name) is not None]
            if not points:
                continue
            figure.add_scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                name=f"#{trial.number}: {trial.value:.4g}", legendgroup=str(trial.number),
                visible=name == names[0],
                line={"color": palette[rank % len(palette)], "width": 3 if rank == 0 else 1.5}, marker={"size": 5},
                hovertemplate=f"trial {trial.number}<br>epoch %{{x}}<br>{name} %{{y:.4g}}<extra></extra>",
            )
            owner.append(name)
    buttons = [
        {"label": name, "method": "update",
         "args": [{"visible": [o == name for o in owner]},
                  {"yaxis.title.text": name, "yaxis.type": "log" if _is_learning_rate(name) else "linear"}]}
        for name in names
    ]
    # not "of N": the figure is redrawn only when its trials change, so N would go stale
    shown = f"the {len(trials)} best complete trials" if n_complete > len(trials) else (
        f"all {n_complete} complete trial{'s' if n_complete != 1 else ''}")
    figure.update_layout(
        title={"text": f"Learning curves ({shown})", "x": 0.01, "font": {"size": 15}},
        template="plotly_white", margin={"l": 60, "r": 10, "t": 70, "b": 45},
        xaxis={"title": {"text": "epoch"}},
        yaxis={"title": {"text": names[0]}, "type": "log" if _is_learning_rate(names[0]) else "linear"},
        legend={"title": {"text": "trial: value"}, "y": 0.9, "yanchor": "top"},
        updatemenus=[{"buttons": buttons, "active": 0, "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "bottom",
                      "direction": "down", "showactive": True}],
        hovermode="closest",
    )
    return figure


def _is_learning_rate(name: str) -> bool:
    return name == "lr" or name.endswith("_lr")


def _epoch_rows(history: Sequence[Mapping[str, float]]) -> list[dict[str, float]]:
    """Finite numbers only, with an ``epoch`` (1-based) in each row; JSON-safe."""
    rows = []
    for index, row in enumerate(history):
        epoch = row.get("epoch", row.get("step", index + 1))
        values = {
            k: float(f"{float(v):.6g}")
            for k, v in row.items()
            if k not in ("epoch", "step") and isinstance(v, (int, float)) and math.isfinite(v)
        }
        rows.append({"epoch": int(epoch), **values})
    json.dumps(rows)  # raises on anything the storage could not keep
    return rows


def _metric_names(rows: Sequence[Mapping[str, Any]], first: str | None = None) -> list[str]:
    """Metric names in reading order: the study's metric, validation, training, then the rest (lr)."""
    names = list(dict.fromkeys(k for row in rows for k in row if k != "epoch"))

    def order(name: str) -> tuple[int, int]:
        if name == first:
            return (0, 0)
        group = next((i for i, prefix in enumerate(_METRIC_ORDER) if name.startswith(prefix)), len(_METRIC_ORDER))
        return (1 + group, names.index(name))

    return sorted(names, key=order)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
