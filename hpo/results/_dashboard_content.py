"""What optuna-dashboard shows beside Optuna's own data, stored the way optuna-dashboard stores it.

Everything here lives in the storage, so plain ``optuna-dashboard <storage URL>`` shows it (the
per-trial pictures also need the artifact store):

- :func:`describe_study` — the metric's name instead of "Objective 0" (``study.set_metric_names``)
  and the study note: the headline (:mod:`hpo.results._headline`: winner, gains, test metrics,
  export and retrain commands), then the description, the command that runs the study again and
  the effective study file;
- :func:`record_trial_history` / :func:`record_confusion_matrix` — a running trial's per-epoch
  metrics and validation confusion matrix, kept in trial system attributes;
- :func:`refresh_after_trial` — what a worker calls once a trial has finished: the trial's note
  (summary first: value, rank, best epoch, final metrics, the prune reason, its export command;
  then a compact curve and the link to every epoch), the study note's headline when it changed,
  the "Learning curves" figure (the best complete trials, and the pruned trials that got furthest,
  dashed, ending in x) and the best trial's confusion matrix, normalised by row.

Per-trial cost does not grow with the study: a new trial's note is inserted without reading
anything, the study note and figures are read and rewritten key by key (never through
optuna-dashboard's ``save_note``/``save_plotly_graph_object``, which read every study system
attribute, two more rows of which come with each trial), and the metric's name is the worker's.
None of these functions raises: what the dashboard shows must never cost a trial.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shlex
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import optuna
import tomli_w
from optuna.trial import FrozenTrial, TrialState

from hpo.results._headline import Headline, compute_headline, fmt
from hpo.results._standings import Standings, StandingsTracker, standings_of
from hpo.storage import (
    StudyAttrWriter,
    best_effort,
    cached_trial,
    insert_study_system_attrs,
    redact,
    storage_url_of,
    study_attr_transaction,
    study_id,
    study_storage,
    study_system_attrs_with_prefix,
    trial_id,
)
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
PRUNED_CURVES = 5
"""How many pruned trials it shows besides: those whose last value was best (what pruning cut)."""

CURVE_ARTIFACT = "learning_curves.svg"
"""The per-trial chart (:func:`hpo.results.upload_learning_curves`) the trial note shows."""
TABLE_ROWS = 6
"""Rows of the every-k-th-epoch table a trial note shows when it has no curve picture."""

# optuna-dashboard's storage layout (optuna_dashboard._note, _custom_plot_data): values split into
# rows of at most 2,045 characters under numbered keys; notes carry a version the editor checks.
_CHUNK = 2045
_STUDY_NOTE_PREFIX = "dashboard:note_str:"
_STUDY_NOTE_VERSION = "dashboard:note_ver"
_PLOT_PREFIX = "dashboard:plot_data:"
_ARTIFACT_PREFIX = "artifacts:"
HEADLINE_END = "\n\n---\n\n"
"""Separates the study note's headline (rewritten as trials finish) from the rest (kept as it is)."""

_METRIC_ORDER = ("val_", "train_")


def _trial_note_keys(trial_id_: int) -> tuple[str, str]:
    return f"dashboard:{trial_id_}:note_str:", f"dashboard:{trial_id_}:note_ver"


def _chunks(text: str) -> list[str]:
    return [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]


# -- the study note ----------------------------------------------------------------------------------

def describe_study(study: optuna.Study, spec: StudySpec) -> None:
    """Name the objective after the metric and write the study note (headline, description, how to run it again)."""
    name_objective(study, spec.metric)
    with best_effort(f"study {study.study_name}: note not written", logger):
        storage = note_storage(study)
        head = compute_headline(study, metric=spec.metric, user_attrs={"metric": spec.metric}, storage=storage)
        body = study_note(spec, study_name=study.study_name, storage=storage)
        with study_attr_transaction(study_storage(study), study_id(study)) as writer:
            writer.write_chunks(_STUDY_NOTE_PREFIX, _chunks(head.markdown() + HEADLINE_END + body),
                                version_key=_STUDY_NOTE_VERSION)


def name_objective(study: optuna.Study, metric: str) -> None:
    """``study.set_metric_names([metric])`` unless the study has names already."""
    with best_effort(f"study {study.study_name}: metric name not set", logger):
        if study.metric_names is None:
            with warnings.catch_warnings():  # experimental in Optuna, and what optuna-dashboard reads
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([metric])


def note_storage(study: optuna.Study) -> str | None:
    """The storage URL notes name in their commands (passwords redacted), when the storage has one."""
    url = storage_url_of(study_storage(study))
    return redact(url) if url else None


def effective_study_text(spec: StudySpec) -> str:
    """The study that runs: the file's text as written, or, with overrides, the overridden content as TOML."""
    if not spec.overrides:
        return spec.text
    try:
        content = apply_overrides(tomllib.loads(spec.text), spec.overrides)
    except (tomllib.TOMLDecodeError, TypeError, ValueError):  # no readable text (a spec made in code)
        return spec.text
    return tomli_w.dumps(content)


def run_again_command(spec: StudySpec, *, study_name: str | None = None, storage: str | None = None) -> str:
    """``hpo run FILE --study-name NAME --storage URL --set ...``: this study, not a new one."""
    parts = [f"hpo run {shlex.quote(spec.path or 'STUDY_FILE')}"]
    if study_name and study_name != spec.name:
        parts.append(f"--study-name {shlex.quote(study_name)}")
    if storage:
        parts.append(f"--storage {shlex.quote(storage)}")
    parts += [f"--set {shlex.quote(a)}" for a in format_overrides(spec.overrides)]
    return " \\\n    ".join(parts)


def study_note(spec: StudySpec, *, study_name: str | None = None, storage: str | None = None) -> str:
    """The study note below the headline, in Markdown: what the study is, how to run it again, the effective file."""
    assignments = format_overrides(spec.overrides)
    lines = [
        f"## {spec.description or spec.name}",
        "",
        f"**{spec.model}** tuned for **{spec.metric}** ({spec.direction}); "
        f"sampler {spec.sampler.name}, pruner {spec.pruner.name}, "
        f"n_trials = {spec.n_trials if spec.n_trials is not None else 'none (timeout)'}.",
        "",
        "**Overrides:** " + (", ".join(f"`{a}`" for a in assignments) if assignments else "none (the study file as written)"),
        "",
        "**Run again** (this study: more trials with `--n-trials N`):",
        "",
        "```bash",
        run_again_command(spec, study_name=study_name, storage=storage),
        "```",
        "",
        "**Effective study file** (the file with the overrides applied):",
        "",
        "```toml",
        effective_study_text(spec).rstrip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def replace_headline(note: str, headline: str) -> str:
    """``note`` with its headline section (up to :data:`HEADLINE_END`) replaced; a headline put first if it has none."""
    if note.startswith("### ") and HEADLINE_END in note:
        return headline + HEADLINE_END + note.split(HEADLINE_END, 1)[1]
    return headline + HEADLINE_END + note


def _read_note(writer: StudyAttrWriter, prefix: str) -> str:
    rows = writer.read(prefix)
    return "".join(str(rows.get(f"{prefix}{i}", "")) for i in range(len(rows)))


def _update_study_note(writer: StudyAttrWriter, head: Headline) -> tuple[bool, int | None]:
    """Rewrite the study note's headline if it changed: (whether it did, the winner it named before)."""
    note = _read_note(writer, _STUDY_NOTE_PREFIX)
    updated = replace_headline(note, head.markdown())
    before = re.match(r"### Winner: trial (\d+)", note)
    if updated == note:
        return False, None
    writer.write_chunks(_STUDY_NOTE_PREFIX, _chunks(updated), version_key=_STUDY_NOTE_VERSION)
    return True, int(before.group(1)) if before else None


def refresh_study_note(study: optuna.Study, *, storage: str | None = None) -> None:
    """Rewrite the study note's headline from the study as it is now (e.g. after a final model was recorded)."""
    with best_effort(f"study {study.study_name}: note not updated", logger):
        with study_attr_transaction(study_storage(study), study_id(study)) as writer:
            standings = standings_of(study.get_trials(deepcopy=False), study.directions)
            head = compute_headline(study, standings=standings, storage=storage or note_storage(study))
            changed, former = _update_study_note(writer, head)
            if changed:
                _rewrite_notes(writer, study, head, standings, former)


def _rewrite_notes(writer: StudyAttrWriter, study: optuna.Study, head: Headline, standings: Standings,
                   former: int | None, skip: int | None = None) -> None:
    """The winner's page leads with the new headline; a former winner's no longer claims it."""
    storage, sid = study_storage(study), study_id(study)
    for number in {head.winner.number if head.winner else None, former} - {None, skip}:
        try:
            trial = storage.get_trial(storage.get_trial_id_from_study_id_trial_number(sid, number))
        except KeyError:
            continue
        _rewrite_trial_note(writer, trial, head, standings, sid)


# -- what a running trial records --------------------------------------------------------------------

def record_trial_history(trial: optuna.Trial, history: Sequence[Mapping[str, float]]) -> None:
    """Keep a running trial's per-epoch metrics (its note and the study figure are drawn once it ended)."""
    rows = _epoch_rows(history)
    if not rows:
        return
    with best_effort(f"trial {trial.number}: history not stored", logger):
        _store_system_attr(trial, HISTORY_KEY, rows)


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


def record_confusion_matrix(trial: optuna.Trial, confusion: Sequence[Sequence[int]], tissues: Sequence[str]) -> None:
    """Keep a running trial's validation confusion matrix (rows true, columns predicted) for the study figure."""
    value = {"tissues": [str(t) for t in tissues], "matrix": [[int(c) for c in row] for row in confusion]}
    with best_effort(f"trial {trial.number}: confusion matrix not stored", logger):
        _store_system_attr(trial, CONFUSION_KEY, value)


def has_study_figures(trial: optuna.Trial) -> bool:
    """Whether the trial recorded anything the study's figures show (read from its cached state, no query)."""
    cached = cached_trial(trial)
    return cached is not None and (HISTORY_KEY in cached.system_attrs or CONFUSION_KEY in cached.system_attrs)


def describes_itself(trial: optuna.Trial) -> bool:
    """Whether the trial is one of a tissue-hpo objective (it stored its steps), so it gets a note.

    Trials of other objectives (``hpo compare``'s test functions) cost nothing here.
    """
    cached = cached_trial(trial)
    return cached is not None and ("steps_run" in cached.user_attrs or HISTORY_KEY in cached.system_attrs)


# -- after a trial ended -------------------------------------------------------------------------------

_TRACKERS: weakref.WeakKeyDictionary[optuna.Study, StandingsTracker] = weakref.WeakKeyDictionary()
"""A worker's standings of its study (one study object per worker), kept current trial by trial."""


def _tracker(study: optuna.Study) -> StandingsTracker:
    tracker = _TRACKERS.get(study)
    if tracker is None:
        tracker = _TRACKERS[study] = StandingsTracker(study)
    return tracker


def current_best(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial of a single-objective study as this process's :class:`StandingsTracker` sees it
    now (it reads only the trials that changed since its last look: a worker's per-trial check, flat in the
    study's size), else ``None``."""
    if len(study.directions) != 1:
        return None
    ranked = _tracker(study).update().ranked
    return ranked[0] if ranked else None


def refresh_after_trial(study: optuna.Study, trial: optuna.Trial, *, metric: str) -> None:
    """A worker's call once ``trial`` finished (complete or pruned): its note, the study note, the figures.

    ``metric``: the study's metric (the worker's, so that nothing reads it per trial). The trial's note is
    inserted new; the study note's headline, the learning curves and the confusion matrix are rewritten
    only when they change, in one transaction that other workers' refreshes wait for (not the admission
    lock: no worker waits to start its next trial). The study's standings are kept by a
    :class:`~hpo.results._standings.StandingsTracker` (the first call reads every trial; later ones only the
    trials that changed), so the cost per trial does not grow with the study. Never raises.
    """
    if not describes_itself(trial):
        return
    with best_effort(f"trial {trial.number}: note and study figures not written", logger):
        storage = note_storage(study)
        tracker = _tracker(study)
        standings = tracker.update()
        frozen = study_storage(study).get_trial(trial_id(trial))
        if frozen.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            return
        attrs = study.user_attrs  # a fixed handful of rows (the final model's test metrics among them)
        head = compute_headline(study, standings=standings, metric=metric, user_attrs=attrs, storage=storage)
        _write_trial_note(study, frozen, head, standings)
        shown = curve_trials(standings)
        redraw_curves = HISTORY_KEY in frozen.system_attrs and any(t.number == frozen.number for t in shown)
        draw_confusion = head.winner is not None and head.winner.number == frozen.number and CONFUSION_KEY in frozen.system_attrs
        note = study_system_attrs_with_prefix(study_storage(study), study_id(study), _STUDY_NOTE_PREFIX)
        current = "".join(str(note.get(f"{_STUDY_NOTE_PREFIX}{i}", "")) for i in range(len(note)))
        if not (redraw_curves or draw_confusion or replace_headline(current, head.markdown()) != current):
            return  # nothing the study page shows changed: no lock
        with study_attr_transaction(study_storage(study), study_id(study)) as writer:
            standings = tracker.update()  # again, under the lock: what others finished meanwhile
            head = compute_headline(study, standings=standings, metric=metric, user_attrs=attrs, storage=storage)
            changed, former = _update_study_note(writer, head)
            if changed:
                _rewrite_notes(writer, study, head, standings, former, skip=frozen.number)
            if redraw_curves:
                _save_figure(writer, CURVES_FIGURE_ID, learning_curves_figure(
                    curve_trials(standings), metric=metric, n_complete=head.counts["complete"]))
            if draw_confusion and head.winner is not None and head.winner.number == frozen.number:
                _save_figure(writer, CONFUSION_FIGURE_ID, confusion_matrix_figure(
                    frozen.system_attrs[CONFUSION_KEY],
                    title=f"Confusion matrix: best trial {frozen.number} ({metric} {fmt(frozen.value)}), validation"))


def refresh_study_figures(study: optuna.Study, trial: optuna.Trial, *, metric: str | None = None) -> None:
    """:func:`refresh_after_trial` for callers that do not know the metric (it is read from the study once)."""
    refresh_after_trial(study, trial, metric=metric or str(study.user_attrs.get("metric") or "value"))


def _save_figure(writer: StudyAttrWriter, figure_id: str, figure: Any) -> None:
    """A plotly figure (or its JSON dict) as optuna-dashboard's ``save_plotly_graph_object`` stores it."""
    text = json.dumps(figure, separators=(",", ":")) if isinstance(figure, dict) else figure.to_json()
    writer.write_chunks(f"{_PLOT_PREFIX}{figure_id}:", _chunks(text))


def curve_trials(standings: Standings) -> list[FrozenTrial]:
    """The trials the learning-curve figure shows: the best complete ones, then the pruned ones that got furthest."""
    complete = [t for t in standings.ranked if t.system_attrs.get(HISTORY_KEY)][:CURVES_TRIALS]
    pruned = [t for t in standings.pruned if t.system_attrs.get(HISTORY_KEY)][:PRUNED_CURVES]
    return complete + pruned


# -- the trial note ------------------------------------------------------------------------------------

def _write_trial_note(study: optuna.Study, trial: FrozenTrial, head: Headline, standings: Standings) -> None:
    """Insert the finished trial's note as version 1 (nothing read); an existing note is rewritten instead."""
    body = trial_note(trial, head, standings, study_id_=study_id(study))
    prefix, version = _trial_note_keys(trial_id(trial))
    values: dict[str, Any] = {version: 1}
    values.update({f"{prefix}{i}": chunk for i, chunk in enumerate(_chunks(body))})
    if not insert_study_system_attrs(study_storage(study), study_id(study), values):
        with study_attr_transaction(study_storage(study), study_id(study)) as writer:
            writer.write_chunks(prefix, _chunks(body), version_key=version)


def _rewrite_trial_note(writer: StudyAttrWriter, trial: FrozenTrial, head: Headline, standings: Standings,
                        study_id_: int) -> None:
    """Rewrite a finished trial's note (the winner's leads with the current headline; a former winner's no more)."""
    prefix, version = _trial_note_keys(trial_id(trial))
    writer.write_chunks(prefix, _chunks(trial_note(trial, head, standings, study_id_=study_id_)), version_key=version)


def trial_note(trial: FrozenTrial, head: Headline, standings: Standings, *, study_id_: int | None = None) -> str:
    """A finished trial's note in Markdown, summary first.

    The winner's note opens with the study's headline; every other trial's with its value and rank (as
    of when it finished) and one line on the winner then. Then: best epoch and final metrics (4
    significant digits), fold scores, the prune reason with the threshold it lost to, the command that
    exports this trial, a compact per-epoch chart (the ``learning_curves.svg`` artifact, else a short table) and the
    link to every epoch (``learning_curves.csv``). Raw values stay in the trial's attributes.
    """
    attrs = trial.user_attrs
    metric = head.metric
    rank = standings.rank_of(trial, maximize=head.direction == "maximize")
    is_winner = head.winner is not None and head.winner.number == trial.number
    if trial.state == TrialState.PRUNED:
        steps = attrs.get("steps_run")
        at = f" at step {steps}" if steps else ""
        status = f"**Trial {trial.number}: pruned{at}**, {metric} {fmt(trial.value)} (its last value)"
    else:
        status = (f"**Trial {trial.number}: complete, {metric} {fmt(trial.value)}, "
                  f"rank {rank} of {head.counts['complete']}**" + ("" if is_winner else " (when it finished)"))
    lines = [head.markdown(heading="####", importance_warning=False).rstrip(), "", status] if is_winner else [status]
    if not is_winner and head.winner is not None:
        gains = head.gains_text().replace(" (the defaults: ", " (defaults: ")
        lines += ["", f"Winner then: trial {head.winner.number} ({fmt(head.winner.value)}); {gains}."]
    details = _detail_line(attrs, metric)
    if details:
        lines += ["", details]
    if attrs.get("fold_scores"):
        scores = [float(s) for s in attrs["fold_scores"]]
        spread = f" ± {fmt(float(attrs['cv_std']))}" if isinstance(attrs.get("cv_std"), (int, float)) else ""
        lines += ["", f"Fold scores: {', '.join(f'{s:.4g}' for s in scores)} (mean {fmt(sum(scores) / len(scores))}{spread})"]
    if attrs.get("prune_reason"):
        lines += ["", f"Why pruned: {attrs['prune_reason']}"]
    if attrs.get("at_chance") is True:
        lines += ["", "**At chance:** it ended no better than guessing after its whole budget (learned nothing)."]
    if trial.state == TrialState.COMPLETE and not is_winner:
        lines += ["", f"`{head.export_command(trial=trial.number, out=f'trial{trial.number}.toml')}`"]
    lines += _curve_lines(trial, metric, study_id_)
    return "\n".join(lines) + "\n"


def _detail_line(attrs: Mapping[str, Any], metric: str) -> str:
    """``best epoch 31 of 39 · val_accuracy 0.95 · ... · 12.3 s on cpu`` (4 significant digits)."""
    parts = []
    if attrs.get("best_epoch"):
        parts.append(f"best epoch {attrs['best_epoch']} of {attrs.get('steps_run', '?')}")
    if isinstance(attrs.get("tie_break_loss"), (int, float)):
        parts.append(f"tie-break loss {float(attrs['tie_break_loss']):.4g}")
    names = sorted((k for k, v in attrs.items() if k.startswith(("val_", "train_")) and k != metric
                    and isinstance(v, (int, float)) and not isinstance(v, bool) and k != "train_seconds"),
                   key=lambda k: (not k.startswith("val_"), k))
    parts += [f"{name} {float(attrs[name]):.4g}" for name in names]
    if isinstance(attrs.get("train_seconds"), (int, float)):
        parts.append(f"{float(attrs['train_seconds']):.3g} s" + (f" on {attrs['device']}" if attrs.get("device") else ""))
    if attrs.get("n_parameters"):  # 0 for scikit-learn models: not worth a word
        parts.append(f"{int(attrs['n_parameters']):,} parameters")
    return " · ".join(parts)


def _artifact_urls(trial: FrozenTrial, study_id_: int | None) -> dict[str, str]:
    """File name -> optuna-dashboard's URL of the trial's artifacts (from its system attributes; no query)."""
    if study_id_ is None:
        return {}
    urls = {}
    for key, value in trial.system_attrs.items():
        if key.startswith(_ARTIFACT_PREFIX):
            try:
                meta = json.loads(value) if isinstance(value, str) else value
                urls[meta["filename"]] = f"/artifacts/{study_id_}/{trial_id(trial)}/{meta['artifact_id']}"
            except (TypeError, ValueError, KeyError):
                continue
    return urls


def _curve_lines(trial: FrozenTrial, metric: str, study_id_: int | None) -> list[str]:
    """The per-epoch chart (the ``learning_curves.svg`` artifact) or a short every-k-th-epoch table, and the link to all epochs."""
    rows = trial.system_attrs.get(HISTORY_KEY) or []
    if not rows:
        return []
    urls = _artifact_urls(trial, study_id_)
    if CURVE_ARTIFACT in urls:
        lines = ["", f"![losses, scores and learning rate per epoch]({urls[CURVE_ARTIFACT]})"]
    else:
        names = [n for n in _metric_names(rows, first=metric) if n == metric or n.endswith("_loss")][:3]
        step = max(1, math.ceil(len(rows) / TABLE_ROWS))
        picked = rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else [])
        lines = ["", "| epoch | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
        lines += [f"| {int(r['epoch'])} | " + " | ".join(_cell(r.get(n)) for n in names) + " |" for r in picked]
    csv = urls.get("learning_curves.csv")
    every = f"[learning_curves.csv]({csv})" if csv else "the trial's `learning_curves.csv` artifact"
    lines += ["", f"Every epoch, every metric: {every}."]
    return lines


# -- the study figures ---------------------------------------------------------------------------------

def refresh_learning_curves(study: optuna.Study, *, finished_trial: int | None = None, metric: str | None = None) -> bool:
    """Redraw the study's learning-curve figure; True when it was saved.

    With ``finished_trial`` (a trial id) nothing is written unless that trial is one the figure shows.
    """
    with best_effort(f"study {study.study_name}: learning curves not redrawn", logger):
        with study_attr_transaction(study_storage(study), study_id(study)) as writer:
            standings = standings_of(study.get_trials(deepcopy=False), study.directions)
            shown = curve_trials(standings)
            if not shown or (finished_trial is not None and all(trial_id(t) != finished_trial for t in shown)):
                return False
            metric = metric or str(study.user_attrs.get("metric") or "value")
            _save_figure(writer, CURVES_FIGURE_ID, learning_curves_figure(
                shown, metric=metric, n_complete=standings.counts.complete))
            return True
    return False


def learning_curves_figure(trials: Sequence[FrozenTrial], *, metric: str, n_complete: int) -> dict[str, Any]:
    """Every metric per epoch, one line per trial (best first); a menu picks the metric shown.

    Complete trials are solid lines, the best one thick; pruned trials are dashed lines that end in an x
    where the pruner stopped them. optuna-dashboard gives a figure a 450 px high card, so one metric
    at a time, full size, reads better than small multiples; the study's metric is shown first.
    Returned as plotly's JSON structure (a dict): building it through ``plotly.graph_objects`` validates
    every property and costs 50-100 ms per redraw, for the same JSON.
    """
    import plotly.colors

    histories = {t.number: t.system_attrs.get(HISTORY_KEY) or [] for t in trials}
    names = _metric_names([row for rows in histories.values() for row in rows], first=metric) or [metric]
    palette = plotly.colors.qualitative.Plotly
    data: list[dict[str, Any]] = []
    owner: list[str] = []  # the metric of each trace
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for index, trial in enumerate(trials):
        pruned = trial.state == TrialState.PRUNED
        rank = complete.index(trial) if not pruned else None
        colour = palette[index % len(palette)]
        label = f"#{trial.number}: {fmt(trial.value)}" + (" (pruned)" if pruned else "")
        for name in names:
            points = [(row["epoch"], row[name]) for row in histories[trial.number] if row.get(name) is not None]
            if not points:
                continue
            symbols, sizes = ["circle"] * len(points), [5] * len(points)
            if pruned:
                symbols[-1], sizes[-1] = "x", 11
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": label, "legendgroup": str(trial.number),
                "x": [p[0] for p in points], "y": [p[1] for p in points], "visible": name == names[0],
                "line": {"color": colour, "width": 3 if rank == 0 else 1.5, "dash": "dash" if pruned else "solid"},
                "marker": {"size": sizes, "symbol": symbols, "color": colour},
                "hovertemplate": f"trial {trial.number}{' (pruned)' if pruned else ''}<br>epoch %{{x}}<br>"
                                 f"{name} %{{y:.4g}}<extra></extra>",
            })
            owner.append(name)
    buttons = [
        {"label": name, "method": "update",
         "args": [{"visible": [o == name for o in owner]},
                  {"yaxis.title.text": name, "yaxis.type": "log" if _is_learning_rate(name) else "linear"}]}
        for name in names
    ]
    n_shown = len(complete)
    # not "of N": the figure is redrawn only when its trials change, so N would go stale
    shown = f"the {n_shown} best complete trials" if n_complete > n_shown else (
        f"all {n_complete} complete trial{'s' if n_complete != 1 else ''}")
    n_pruned = len(trials) - n_shown
    if n_pruned:
        shown += f" and {n_pruned} pruned (dashed, x: pruned there)"
    layout = {
        "title": {"text": f"Learning curves ({shown})", "x": 0.01, "font": {"size": 15}},
        "plot_bgcolor": "white", "paper_bgcolor": "white", "margin": {"l": 60, "r": 10, "t": 70, "b": 45},
        "xaxis": {**_AXIS, "title": {"text": "epoch"}},
        "yaxis": {**_AXIS, "title": {"text": names[0]}, "type": "log" if _is_learning_rate(names[0]) else "linear"},
        "legend": {"title": {"text": "trial: value"}, "y": 0.9, "yanchor": "top"},
        "updatemenus": [{"buttons": buttons, "active": 0, "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "bottom",
                         "direction": "down", "showactive": True}],
        "hovermode": "closest",
    }
    return {"data": data, "layout": layout}


_AXIS = {"gridcolor": "#ebebeb", "zerolinecolor": "#ebebeb", "linecolor": "#444", "automargin": True}
"""plotly_white's look, without its 10 kB template in every stored figure."""


def confusion_matrix_figure(confusion: Mapping[str, Any], *, title: str, height: int | None = None) -> Any:
    """A heat map of the validation confusion matrix, true tissue down, predicted across, every label shown.

    Colour is the share of the true tissue's samples (each row sums to 1), so a rare tissue's errors
    show as strongly as a common one's; cells print the counts while they fit; hover gives both.
    """
    import plotly.graph_objects as go

    tissues, counts = list(confusion["tissues"]), confusion["matrix"]
    shares = [[c / max(sum(row), 1) for c in row] for row in counts]
    n = len(tissues)
    font = 11 if n <= 20 else 9 if n <= 40 else 7
    figure = go.Figure(go.Heatmap(
        z=shares, x=tissues, y=tissues, customdata=counts, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": {"text": "share of<br>the row"}, "thickness": 12},
        text=[[str(c) if c else "" for c in row] for row in counts], texttemplate="%{text}" if n <= 40 else None,
        textfont={"size": font},
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} samples (%{z:.0%} of the row)<extra></extra>",
    ))
    layout: dict[str, Any] = {}
    if height is not None:
        layout["height"] = height
    figure.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}}, template="plotly_white",
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis={"title": {"text": "predicted"}, "side": "bottom", "tickangle": -45, "automargin": True,
               "dtick": 1, "tickfont": {"size": font}},
        yaxis={"title": {"text": "true"}, "autorange": "reversed", "automargin": True, "dtick": 1,
               "tickfont": {"size": font}},
        **layout,
    )
    return figure


def top_confusions(confusion: Mapping[str, Any], k: int = 10) -> list[tuple[str, str, int, int]]:
    """The ``k`` largest off-diagonal cells: ``(true, predicted, count, samples of the true tissue)``, most first."""
    tissues, counts = confusion["tissues"], confusion["matrix"]
    cells = [(tissues[i], tissues[j], int(c), int(sum(row)))
             for i, row in enumerate(counts) for j, c in enumerate(row) if i != j and c]
    return sorted(cells, key=lambda cell: (-cell[2], -cell[2] / max(cell[3], 1), cell[0], cell[1]))[:k]


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
    names = list(dict.fromkeys(k for row in rows for k in row if k not in ("epoch", "fold")))

    def order(name: str) -> tuple[int, int]:
        if name == first:
            return (0, 0)
        group = next((i for i, prefix in enumerate(_METRIC_ORDER) if name.startswith(prefix)), len(_METRIC_ORDER))
        return (1 + group, names.index(name))

    return sorted(names, key=order)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
