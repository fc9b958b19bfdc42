"""The one trial table: counts by state, the best and the top trials, the studies in a storage."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

NOT_FAILURES = ("interrupted", "abandoned", "storage outage", "stale", "no heartbeat")
TIE_BREAK_ATTR = "tie_break_loss"
"""Trial user attribute: the smooth secondary loss (lower is better) that orders trials of equal value."""
"""``fail_reason`` values of FAILED trials that do not count toward ``max_failed_trials``."""


@dataclass(frozen=True)
class Counts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    @classmethod
    def of(cls, study: optuna.Study) -> "Counts":
        return cls.of_trials(study.get_trials(deepcopy=False))

    @classmethod
    def of_trials(cls, trials: Sequence[FrozenTrial]) -> "Counts":
        """The counts of trials already read (one read serves the counts and whatever else needs them)."""
        states = [t.state for t in trials]
        return cls(
            complete=states.count(TrialState.COMPLETE),
            pruned=states.count(TrialState.PRUNED),
            # a trial interrupted by Ctrl-C or abandoned by hand says nothing about its configuration (re-queued)
            failed=sum(t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") not in NOT_FAILURES for t in trials),
            running=states.count(TrialState.RUNNING),
            waiting=states.count(TrialState.WAITING),
        )


@dataclass(frozen=True)
class StudyRow:
    name: str
    model: str
    metric: str
    direction: str
    counts: Counts
    best_value: float | None
    best_trial: int | None
    started: str


def list_studies(storage: optuna.storages.BaseStorage) -> list[StudyRow]:
    """Every study in ``storage`` (oldest first) with counts per state and its best value."""
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        rows.append(study_row(study, started=summary.datetime_start))
    return rows


def study_row(study: optuna.Study, started: Any = None) -> StudyRow:
    best = best_trial(study)
    attrs = study.user_attrs
    direction = study.direction.name.lower() if len(study.directions) == 1 else "multi"
    return StudyRow(
        name=study.study_name,
        model=str(attrs.get("model", "?")),
        metric=str(attrs.get("metric", "value")),
        direction=direction,
        counts=Counts.of(study),
        best_value=None if best is None else best.value,
        best_trial=None if best is None else best.number,
        started=started.strftime("%Y-%m-%d %H:%M") if started is not None else "",
    )


def ranked_trials(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The complete trials with a finite value, best first: THE order every surface shows.

    Several objectives rank by the first. Equal values rank by the trial's ``tie_break_loss`` (the smooth
    secondary, lower first; a trial without one after those with one), then the earlier trial first: a
    fixed order per trial, whichever worker finished first.
    """
    sign = -1.0 if directions[0] == StudyDirection.MAXIMIZE else 1.0
    complete = [
        t for t in trials
        if t.state == TrialState.COMPLETE and t.values is not None and math.isfinite(t.values[0])
    ]
    return sorted(complete, key=lambda t: rank_key(sign * t.values[0], tie_break_of(t), t.number))


def tie_break_of(trial: FrozenTrial) -> float:
    """The trial's ``tie_break_loss``; infinity when it has none (older trials, models without one)."""
    value = trial.user_attrs.get(TIE_BREAK_ATTR)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.inf


def rank_key(signed_value: float, tie_break: float, number: int) -> tuple[float, float, int]:
    """The sort key of :func:`ranked_trials`: the value (negated when maximising), the tie-break, the number."""
    return (signed_value, tie_break, number)


def top_trials(study: optuna.Study, k: int = 5) -> list[FrozenTrial]:
    """The ``k`` best complete trials of ``study``, best first (:func:`ranked_trials`)."""
    return ranked_trials(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), study.directions)[:k]


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial of a single-objective study (:func:`ranked_trials`), else ``None``."""
    if len(study.directions) != 1:
        return None
    top = top_trials(study, 1)
    return top[0] if top else None


def is_new_best(study: optuna.Study, value: float, tie_break: float | None = None) -> bool:
    """Whether a trial still running, with ``value`` and ``tie_break`` (its ``tie_break_loss``), ranks above
    every complete trial of a single-objective study in :func:`ranked_trials`' order (True for the first).

    It is newer than all of them, so an exact tie in both keeps the earlier trial first.
    """
    if len(study.directions) != 1 or not math.isfinite(value):
        return False
    best = best_trial(study)
    if best is None:
        return True
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    mine = math.inf if tie_break is None or not math.isfinite(tie_break) else float(tie_break)
    return (sign * value, mine) < (sign * best.value, tie_break_of(best))


def failure_stop_message(study: optuna.Study, max_failed: int) -> str:
    """One line saying that ``study`` stopped on ``max_failed`` failed trials, with the latest reason."""
    failed = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get("fail_reason") not in NOT_FAILURES
    ]
    last = max(failed, key=lambda t: t.number, default=None)
    reason = " ".join(str(last.user_attrs.get("fail_reason") or "no fail_reason").split())[:300] if last else ""
    latest = f"; latest: trial {last.number}: {reason}" if last else ""
    return (
        f"study {study.study_name!r} stopped: {len(failed)} failed trials reached max_failed_trials={max_failed}"
        f"{latest} (hpo show {study.study_name})"
    )


def load_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """The study ``name``; :class:`LookupError` naming the studies that exist when there is none."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in storage.get_all_studies()]
        raise LookupError(f"no study {name!r} in this storage; studies: {', '.join(names) or 'none'}") from None


def find_studies(storage: optuna.storages.BaseStorage, name: str) -> list[optuna.Study]:
    """The study called ``name``, else every study of the comparison group ``name``.

    Raises :class:`LookupError` naming the studies that do exist when nothing matches.
    """
    frozen = storage.get_all_studies()
    names = [study.study_name for study in frozen]
    if name in names:
        return [optuna.load_study(study_name=name, storage=storage)]
    group = sorted(
        study.study_name for study in frozen
        if study.user_attrs.get("comparison") == name or study.study_name.startswith(f"{name.rstrip('/')}/")
    )
    if not group:
        shown = ", ".join(sorted(names)[:20]) or "none"
        raise LookupError(f"no study or comparison named {name!r}; studies in this storage: {shown}")
    return [optuna.load_study(study_name=study_name, storage=storage) for study_name in group]
