"""The headline of a study: who won, by how much, and how to reproduce it. One function computes it.

:func:`compute_headline` reads a study once and returns a :class:`Headline`: the winner (trial and value,
ranked by :func:`hpo.results.ranked_trials`, THE ranking), its gain over the runner-up and over the
study's reference trial (the defaults, the trial whose user attribute ``reference`` is true), the test
metrics of the final model when one was retrained and recorded (:func:`hpo.results.record_final_model`),
the trial the export selects (:func:`hpo.results.selected_trial`: the winner, unless its gain over the
reference is within the noise, then the reference) and the two commands that export and retrain it. Every surface renders that one object:
:meth:`Headline.lines` for the terminal (``hpo show``, the end of ``hpo run`` and ``hpo demo``),
:meth:`Headline.markdown` for optuna-dashboard's notes, and :mod:`hpo.browse`'s report its HTML.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from hpo.results._selection import VAL_SAMPLES_ATTR, Selection, select
from hpo.results._standings import Standings, standings_of
from hpo.results._trials import load_study
from hpo.storage import open_storage, redact, resolve_storage_url

FINAL_MODEL_ATTR = "final_model"
"""Study user attribute: the retrained final model's test metrics (:func:`hpo.results.record_final_model`)."""

EXPORT_FILE = "best.toml"
IMPORTANCE_MIN_TRIALS = 20
"""Below this many complete trials, parameter importances (fANOVA) mostly reflect which points were drawn."""


@dataclass(frozen=True)
class Contender:
    """A trial the headline names: its number and value (a pruned trial's: its last reported value)."""

    number: int
    value: float | None
    state: str = "complete"


@dataclass(frozen=True)
class FinalModel:
    """The recorded retrain of an exported configuration: its test metrics (and the reference's)."""

    trial: int | None
    metrics: dict[str, float]
    reference_metrics: dict[str, float] = field(default_factory=dict)
    train_split: str = "train+val"
    path: str = ""

    @classmethod
    def from_attr(cls, value: Any) -> FinalModel | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("metrics"), Mapping):
            return None
        numbers = lambda mapping: {str(k): float(v) for k, v in (mapping or {}).items()
                                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        trial = value.get("trial")
        return cls(trial=int(trial) if isinstance(trial, int) else None, metrics=numbers(value["metrics"]),
                   reference_metrics=numbers(value.get("reference_metrics")),
                   train_split=str(value.get("train_split", "train+val")), path=str(value.get("path", "")))


@dataclass(frozen=True)
class Headline:
    """Who won, by how much, and how to reproduce it (see :func:`compute_headline`)."""

    study: str
    metric: str
    direction: str
    counts: dict[str, int]
    winner: Contender | None
    runner_up: Contender | None
    reference: Contender | None
    """The reference trial (None: the study has none), whatever its state."""
    final: FinalModel | None
    storage: str | None = None
    """The storage URL the commands name (``--storage``), or None for the default storage."""
    baseline: Mapping[str, Any] | None = None
    """An autoencoder study's PCA baseline (its ``pca_baseline`` user attribute), or None."""
    selection: Selection | None = None
    """What ``hpo export`` exports and why (:func:`hpo.results.selected_trial`), or None when not computed."""

    # -- the numbers ----------------------------------------------------------------------------
    def gain_over(self, other: Contender | None) -> float | None:
        """How much better the winner is than ``other`` (positive: better, in the study's direction)."""
        if self.winner is None or other is None or other.value is None or self.winner.value is None:
            return None
        difference = self.winner.value - other.value
        return difference if self.direction == "maximize" else -difference

    @property
    def reference_won(self) -> bool:
        return self.winner is not None and self.reference is not None and self.reference.number == self.winner.number

    @property
    def few_for_importance(self) -> bool:
        return self.counts.get("complete", 0) < IMPORTANCE_MIN_TRIALS

    # -- the commands ---------------------------------------------------------------------------
    def _storage_option(self) -> str:
        return f" --storage {shlex.quote(self.storage)}" if self.storage else ""

    def export_command(self, trial: int | None = None, out: str = EXPORT_FILE) -> str:
        """``hpo export STUDY [--storage URL] [--trial N] --out best.toml`` (copy-pasteable)."""
        which = f" --trial {trial}" if trial is not None else ""
        return f"hpo export {shlex.quote(self.study)}{self._storage_option()}{which} --out {shlex.quote(out)}"

    def retrain_command(self, config: str = EXPORT_FILE) -> str:
        return f"hpo train --config {shlex.quote(config)}"

    # -- the sentences --------------------------------------------------------------------------
    def winner_text(self) -> str:
        if self.winner is None:
            finished = self.counts.get("complete", 0) + self.counts.get("pruned", 0)
            return f"no winner yet: no complete trial ({finished} finished, {self.counts.get('failed', 0)} failed)"
        defaults = " (the reference: the defaults)" if self.reference_won else ""
        return f"trial {self.winner.number}{defaults}, {self.metric} = {fmt(self.winner.value)} ({self.direction})"

    def gains_text(self) -> str:
        """``+0.0412 over the reference (trial 0, the defaults: 0.8988); +0.0037 over the runner-up (...)``."""
        if self.winner is None:
            return ""
        parts = []
        if self.reference is None:
            parts.append("no reference trial")
        elif self.reference_won:
            parts.append("the reference trial (the defaults) won: no tuned configuration beat it")
        elif self.reference.state != "complete":
            parts.append(f"the reference trial {self.reference.number} (the defaults) is {self.reference.state}: "
                         "no gain to state")
        else:
            parts.append(f"{signed(self.gain_over(self.reference))} over the reference (trial {self.reference.number}, "
                         f"the defaults: {fmt(self.reference.value)})")
        if self.runner_up is None:
            parts.append("no runner-up yet")
        else:
            parts.append(f"{signed(self.gain_over(self.runner_up))} over the runner-up "
                         f"(trial {self.runner_up.number}: {fmt(self.runner_up.value)})")
        return "; ".join(parts)

    def test_text(self) -> str:
        """The final model's test metrics, or "" when none was recorded."""
        if self.final is None or not self.final.metrics:
            return ""
        names = [name for name in self.final.metrics if name.startswith("test_")] or list(self.final.metrics)
        shown = ", ".join(f"{name} {fmt(self.final.metrics[name])}" for name in names if name != "test_loss")
        whose = f"trial {self.final.trial}" if self.final.trial is not None else "the exported trial"
        stale = ""
        chosen = self.selection.trial.number if self.selection and self.selection.trial else None
        chosen = self.winner.number if chosen is None and self.winner is not None else chosen
        if chosen is not None and self.final.trial is not None and self.final.trial != chosen:
            stale = f"; trial {chosen} is selected since: retrain it"
        reference = ""
        if self.final.reference_metrics:
            reference = "; the defaults: " + ", ".join(
                f"{name} {fmt(self.final.reference_metrics[name])}" for name in names
                if name in self.final.reference_metrics and name != "test_loss")
        return f"{shown} (final model of {whose}, trained on {self.final.train_split}{reference}{stale})"

    def baseline_text(self) -> str:
        """``PCA with 48 components (fitted on the training split): val_reconstruction_mse 0.6520, ...``; "" when none."""
        if not isinstance(self.baseline, Mapping) or "n_components" not in self.baseline:
            return ""
        scores = ", ".join(f"{name} {fmt(value)}" for name, value in self.baseline.items()
                           if name.endswith("_reconstruction_mse") and isinstance(value, (int, float)))
        return f"PCA with {self.baseline['n_components']} components (fitted on the training split): {scores}"

    def selected_text(self) -> str:
        """Which trial ``hpo export`` exports and why; "" when there is no winner or no selection."""
        if self.winner is None or self.selection is None or self.selection.trial is None:
            return ""
        if self.selection.reference is None or self.selection.gain is None:  # no complete reference, or it won
            return ""
        return self.selection.reason

    def lines(self) -> list[str]:
        """The terminal's headline: ``winner:``, ``gain:``, ``selected:``, ``test:`` (if retrained), ``export:``
        (the selected trial), ``retrain:``."""
        lines = [f"winner:  {self.winner_text()}"]
        if self.winner is None:
            return lines
        lines.append(f"gain:    {self.gains_text()}")
        if self.selected_text():
            lines.append(f"selected: {self.selected_text()}")
        if self.baseline_text():
            lines.append(f"baseline: {self.baseline_text()}")
        if self.test_text():
            lines.append(f"test:    {self.test_text()}")
        lines.append(f"export:  {self.export_command()}")
        lines.append(f"retrain: {self.retrain_command()}")
        return lines

    def markdown(self, *, heading: str = "###", importance_warning: bool = True) -> str:
        """The headline as Markdown (optuna-dashboard notes): a heading, the gains, test metrics, commands.

        ``importance_warning``: say when too few complete trials make parameter importances unreliable
        (the study note does; a trial's page leaves it to the study note).
        """
        if self.winner is None:
            return f"{heading} No winner yet\n\n{self.winner_text()}.\n"
        title = f"{heading} Winner: trial {self.winner.number}, {self.metric} {fmt(self.winner.value)}"
        if self.reference_won:
            title += " (the defaults)"
        lines = [title, "", _bold_gains(self.gains_text()) + "."]
        if self.selected_text():
            lines += ["", f"**Selected (what `hpo export` exports):** {self.selected_text()}."]
        if self.baseline_text():
            lines += ["", f"**Baseline:** {self.baseline_text()}."]
        if self.test_text():
            lines += ["", f"**Test:** {self.test_text()}."]
        c = self.counts
        lines += ["", f"{c.get('complete', 0)} complete, {c.get('pruned', 0)} pruned, {c.get('failed', 0)} failed "
                      f"trial{'s' if c.get('failed', 0) != 1 else ''}."]
        if importance_warning and self.few_for_importance and c.get("complete", 0) >= 2:
            lines[-1] += (f" Parameter importances from {c.get('complete', 0)} complete trials (fewer than "
                          f"{IMPORTANCE_MIN_TRIALS}) mostly reflect which points were drawn: do not rank parameters by them yet.")
        # inline code, not a code block: a page wraps it at its spaces instead of widening to its longest line
        lines += ["", f"Export and retrain: `{self.export_command()}`  ", f"then `{self.retrain_command()}`"]
        return "\n".join(lines) + "\n"


def _bold_gains(text: str) -> str:
    """``+0.0412 over ...`` -> ``**+0.0412** over ...`` for each gain of :meth:`Headline.gains_text`."""
    return "; ".join(f"**{part.split(' ', 1)[0]}** {part.split(' ', 1)[1]}" if part[:1] in "+-−" and " " in part else part
                     for part in text.split("; "))


def fmt(value: float | None) -> str:
    """A metric value: 4 decimals (0.9400), 4 significant digits when large or tiny; "-" for none."""
    if value is None or not math.isfinite(value):
        return "-" if value is None else str(value)
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4g}"


def signed(value: float | None) -> str:
    return "-" if value is None else ("+" if value >= 0 else "-") + fmt(abs(value))


def _contender(trial: FrozenTrial) -> Contender:
    value = trial.values[0] if trial.values else None
    return Contender(trial.number, value, trial.state.name.lower())


def compute_headline(
    study: optuna.Study,
    *,
    trials: Sequence[FrozenTrial] | None = None,
    standings: Standings | None = None,
    metric: str | None = None,
    user_attrs: Mapping[str, Any] | None = None,
    storage: str | None = None,
) -> Headline:
    """THE headline of ``study``: winner, runner-up, reference, final model, commands.

    ``trials`` (read once, summarised with :func:`hpo.results._standings.standings_of`) or ``standings``
    (a worker's, kept current at a bounded cost) and ``user_attrs``: already read, nothing twice;
    ``metric``: the study's metric name (default: its ``metric`` user attribute); ``storage``: the URL the
    printed commands name with ``--storage`` (None: the default storage, no option). The ranking is
    :func:`hpo.results.ranked_trials`; a multi-objective study ranks by its first objective.
    """
    directions = study.directions
    if standings is None:
        standings = standings_of(study.get_trials(deepcopy=False) if trials is None else trials, directions)
    if user_attrs is None:
        user_attrs = study.user_attrs
    ranked, reference, tally = standings.ranked, standings.reference, standings.counts
    return Headline(
        study=study.study_name,
        metric=metric or str(user_attrs.get("metric") or "value"),
        direction="maximize" if directions[0] == StudyDirection.MAXIMIZE else "minimize",
        # failed: not those interrupted or abandoned (they are re-run)
        counts={"complete": tally.complete, "pruned": tally.pruned, "failed": tally.failed, "running": tally.running},
        winner=_contender(ranked[0]) if ranked else None,
        runner_up=_contender(ranked[1]) if len(ranked) > 1 else None,
        reference=_contender(reference) if reference is not None else None,
        final=FinalModel.from_attr(user_attrs.get(FINAL_MODEL_ATTR)),
        storage=storage,
        baseline=user_attrs.get("pca_baseline"),
        selection=select(ranked[0] if ranked else None, reference, directions[0],
                         metric=str(user_attrs.get("metric") or "value"), val_samples=_int(user_attrs.get(VAL_SAMPLES_ATTR))),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def study_headline(study_name: str, storage_url: str | None = None, *, name_storage: bool = False) -> Headline:
    """:func:`compute_headline` of the study ``study_name`` in ``storage_url`` (default: the default storage).

    ``name_storage``: the printed commands carry ``--storage URL`` (the user named one).
    """
    url = resolve_storage_url(storage_url)
    study = load_study(open_storage(url, heartbeat_interval=None), study_name)
    return compute_headline(study, storage=redact(url) if name_storage else None)
