"""What is in a storage: studies with their trial counts and best values, and a study's top trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.admission import NOT_FAILURES, Counts


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


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet (or a multi-objective study)
        return None


def top_trials(study: optuna.Study, k: int = 5) -> list[FrozenTrial]:
    """The ``k`` best complete trials, best first."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: (t.value, -t.number), reverse=reverse)[:k]


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
