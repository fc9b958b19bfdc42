"""The one trial table: counts by state, the best and the top trials, the studies in a storage."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo.storage import (
    TrialStateCounter,
    best_trial_ids,
    count_trials_by_state,
    list_study_summaries,
    mean_finished_seconds,
    rdb_queries_supported,
    read_trials,
    study_id,
    study_storage,
    trial_ids_with_user_attr,
)

NOT_FAILURES = ("interrupted", "abandoned", "storage outage", "stale", "no heartbeat")
"""``fail_reason`` values of FAILED trials that do not count toward ``max_failed_trials``."""
TIE_BREAK_ATTR = "tie_break_loss"
"""Trial user attribute: the smooth secondary loss (lower is better) that orders trials of equal value."""
REFERENCE_ATTR = "reference"
"""Trial user attribute: true on the study's reference trial (the model's defaults, enqueued as trial 0)."""


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
    def of(cls, study: optuna.Study, counter: TrialStateCounter | None = None) -> Counts:
        """Counted in the database on an RDB storage (no trial is loaded), else from the study's trials.
        ``counter`` (:meth:`counter_for`): a caller that counts again and again reads only what may have changed."""
        storage = study_storage(study)
        if not rdb_queries_supported(storage):
            return cls.of_trials(study.get_trials(deepcopy=False))
        n = counter.counts() if counter is not None else count_trials_by_state(storage, study_id(study), NOT_FAILURES)
        return cls(
            complete=n.get("COMPLETE", 0),
            pruned=n.get("PRUNED", 0),
            failed=n.get("FAIL", 0) - n["FAIL_EXCUSED"],
            running=n.get("RUNNING", 0),
            waiting=n.get("WAITING", 0),
        )

    @staticmethod
    def counter_for(study: optuna.Study) -> TrialStateCounter | None:
        """A :class:`~hpo.storage.TrialStateCounter` for :meth:`of` on an RDB storage (else None)."""
        storage = study_storage(study)
        return TrialStateCounter(storage, study_id(study), NOT_FAILURES) if rdb_queries_supported(storage) else None

    @classmethod
    def of_trials(cls, trials: Sequence[FrozenTrial]) -> Counts:
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
    """Every study in ``storage`` (oldest first) with counts per state and its best value.

    On an RDB storage no trial is loaded but each study's best (small queries per study).
    """
    return [
        study_row(optuna.load_study(study_name=listed.name, storage=storage), started=listed.started)
        for listed in list_study_summaries(storage)
    ]


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
    """The ``k`` best complete trials of ``study``, best first (:func:`ranked_trials`).

    On an RDB storage small queries find them (and the trials tied with the k-th, which the tie-break orders)
    and only those trials are loaded.
    """
    storage = study_storage(study)
    if not rdb_queries_supported(storage):
        return ranked_trials(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), study.directions)[:k]
    maximize = study.directions[0] == StudyDirection.MAXIMIZE
    candidates = [storage.get_trial(i) for i in best_trial_ids(storage, study_id(study), maximize=maximize, limit=k)]
    return ranked_trials(candidates, study.directions)[:k]  # ties with the k-th value: by tie_break_loss


def all_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of ``study`` by number, for read-only surfaces: on an RDB storage read with plain queries
    (several times faster than Optuna's ORM read of a large study), else ``study.get_trials``."""
    trials = read_trials(study_storage(study), study_id(study))
    return study.get_trials(deepcopy=False) if trials is None else trials


def trials_with_user_attr(study: optuna.Study, key: str, value: Any) -> list[FrozenTrial]:
    """The study's trials whose user attribute ``key`` equals ``value``, oldest first; on an RDB storage
    only those trials are loaded."""
    storage = study_storage(study)
    if not rdb_queries_supported(storage):
        return [t for t in study.get_trials(deepcopy=False) if key in t.user_attrs and t.user_attrs[key] == value]
    return [storage.get_trial(i) for i in trial_ids_with_user_attr(storage, study_id(study), key, value)]


def mean_trial_seconds(study: optuna.Study) -> float | None:
    """The mean duration of the complete and pruned trials (``None`` before the first), computed in the
    database on SQLite and PostgreSQL."""
    storage = study_storage(study)
    if rdb_queries_supported(storage):
        try:
            return mean_finished_seconds(storage, study_id(study))
        except NotImplementedError:
            pass
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    return sum(durations) / len(durations) if durations else None


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial of a single-objective study (:func:`ranked_trials`), else ``None``."""
    if len(study.directions) != 1:
        return None
    top = top_trials(study, 1)
    return top[0] if top else None


_READ = object()


def is_new_best(study: optuna.Study, value: float, tie_break: float | None = None, *, best: Any = _READ) -> bool:
    """Whether a trial still running, with ``value`` and ``tie_break`` (its ``tie_break_loss``), ranks above
    every complete trial of a single-objective study in :func:`ranked_trials`' order (True for the first).

    It is newer than all of them, so an exact tie in both keeps the earlier trial first. ``best``: the
    study's best complete trial when the caller knows it (None: there is none), else it is queried.
    """
    if len(study.directions) != 1 or not math.isfinite(value):
        return False
    best = best_trial(study) if best is _READ else best
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
        names = [s.name for s in list_study_summaries(storage)]
        raise LookupError(f"no study {name!r} in this storage; studies: {', '.join(names) or 'none'}") from None


def find_studies(storage: optuna.storages.BaseStorage, name: str) -> list[optuna.Study]:
    """The study called ``name``, else every study of the comparison group ``name``.

    Raises :class:`LookupError` naming the studies that do exist when nothing matches.
    """
    listed = list_study_summaries(storage)
    names = [study.name for study in listed]
    if name in names:
        return [optuna.load_study(study_name=name, storage=storage)]
    group = sorted(
        study.name for study in listed
        if study.user_attrs.get("comparison") == name or study.name.startswith(f"{name.rstrip('/')}/")
    )
    if not group:
        shown = ", ".join(sorted(names)[:20]) or "none"
        raise LookupError(f"no study or comparison named {name!r}; studies in this storage: {shown}")
    return [optuna.load_study(study_name=study_name, storage=storage) for study_name in group]
