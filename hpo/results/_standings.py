"""Where a study stands: the best trials, the reference trial, the counts; kept up to date at a bounded cost.

:func:`standings_of` summarises a list of trials (what ``hpo show`` and ``hpo report`` read once).
:class:`StandingsTracker` keeps a worker's summary current after each trial without reading the
whole study again: it reads only the trials that were unfinished at its last look and those created
since, and ranks the few that can be among the best (a finished trial's value never changes, so a
trial that was not among the best cannot become so later). Its cost per trial does not grow with the
study; the first look, once per worker, reads every trial.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo.results._trials import NOT_FAILURES, REFERENCE_ATTR, Counts, rank_key, ranked_trials, tie_break_of
from hpo.storage import rdb_queries_supported, study_id, study_storage, trial_numbers_from
from hpo.storage import trial_id as id_of

KEEP = 12
"""The best complete trials a tracker keeps ranked: the learning-curve figure's 10 and a margin."""
ID_WINDOW = 1000
"""How far below the largest trial id seen a tracker looks for new trials: ids are handed out in order but
commit in any order among concurrent workers (PostgreSQL), so a late commit is found if within this window."""
KEEP_PRUNED = 5
"""The pruned trials with the best last values it keeps (the figure's pruned curves)."""


@dataclass
class Standings:
    """The best complete trials (best first, THE ranking), the reference trial, the counts per state."""

    ranked: list[FrozenTrial]
    """Best first: every complete trial (:func:`standings_of`), or the best :data:`KEEP` (a tracker's)."""
    reference: FrozenTrial | None
    counts: Counts
    pruned: list[FrozenTrial] = field(default_factory=list)
    """Pruned trials with a finite last value, best first (a tracker keeps :data:`KEEP_PRUNED`)."""
    complete_values: list[tuple[float, float, int]] = field(default_factory=list)
    """Every complete trial's ranking key (value, tie-break, number; :func:`hpo.results._trials.rank_key`
    unsigned), for the rank of one outside :attr:`ranked`."""
    _sorted: dict[bool, tuple[list, list[tuple[float, float, int]]]] = field(default_factory=dict, repr=False, compare=False)
    """The signed keys of :attr:`complete_values`, sorted, per direction: kept by insertion as the list grows,
    so a rank is a binary search (a linear count took ~10 ms per trial at 10,000 trials)."""

    def rank_of(self, trial: FrozenTrial, maximize: bool) -> int | None:
        """1-based rank of a complete ``trial`` among all complete trials (:func:`ranked_trials`' order)."""
        if trial.state != TrialState.COMPLETE or not trial.values:
            return None
        for index, ranked in enumerate(self.ranked):
            if ranked.number == trial.number:
                return index + 1
        sign = -1.0 if maximize else 1.0
        owner, keys = self._sorted.get(maximize, (None, []))
        if owner is not self.complete_values or len(keys) > len(self.complete_values):  # replaced: sort again
            keys = []
            self._sorted[maximize] = (self.complete_values, keys)
        for v, tie, number in self.complete_values[len(keys):]:  # appended since the last rank
            bisect.insort(keys, rank_key(sign * v, tie, number))
        return 1 + bisect.bisect_left(keys, rank_key(sign * trial.values[0], tie_break_of(trial), trial.number))


def _key(trial: FrozenTrial) -> tuple[float, float, int]:
    return (trial.values[0], tie_break_of(trial), trial.number)


def _is_reference(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get(REFERENCE_ATTR) is True


def _prunable(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.PRUNED and trial.values is not None and math.isfinite(trial.values[0])


def _pruned_order(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    sign = -1.0 if directions[0] == StudyDirection.MAXIMIZE else 1.0
    return sorted((t for t in trials if _prunable(t)), key=lambda t: (sign * t.values[0], t.number))


def standings_of(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> Standings:
    """The standings of ``trials`` (one pass over them)."""
    ranked = ranked_trials(trials, directions)
    return Standings(
        ranked=ranked,
        reference=next((t for t in trials if _is_reference(t)), None),
        counts=Counts.of_trials(trials),
        pruned=_pruned_order(trials, directions),
        complete_values=[_key(t) for t in ranked],
    )


class StandingsTracker:
    """A worker's :class:`Standings` of one study, brought up to date by :meth:`update` at a bounded cost."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self._directions = study.directions
        self._standings: Standings | None = None
        self._next = 0
        """Trial numbers below this were looked at (Optuna numbers a study's trials 0, 1, 2, ...)."""
        self._unfinished: dict[int, int] = {}
        """Number -> trial id of the trials unfinished at the last look."""
        self._last_id = -1
        """The largest trial id looked at."""
        self._running = 0

    def _new_trial_ids(self, storage: Any, sid: int) -> list[int]:
        """Ids of the trials created since the last look: consecutive numbers from ``_next`` on, up to the first
        that does not exist yet. On an RDB storage one query on a range of trial ids (from :data:`ID_WINDOW`
        below the largest seen: another worker's insert may commit late); else a lookup per number."""
        if rdb_queries_supported(storage):
            ids = []
            for number, trial_id_ in trial_numbers_from(storage, sid, self._last_id - ID_WINDOW, self._next):
                if number == self._next + len(ids):
                    ids.append(trial_id_)
                elif number > self._next + len(ids):
                    break
            return ids
        ids = []
        while True:
            try:
                ids.append(storage.get_trial_id_from_study_id_trial_number(sid, self._next + len(ids)))
            except KeyError:
                return ids

    def update(self) -> Standings:
        """The standings now: the first call reads every trial, later ones only what may have changed."""
        if self._standings is None:
            return self._full_read()
        storage, sid = study_storage(self._study), study_id(self._study)
        ids = self._new_trial_ids(storage, sid)
        looked = [storage.get_trial(i) for i in [*sorted(self._unfinished.values()), *ids]]
        self._next += len(ids)
        self._last_id = max([self._last_id, *ids])
        self._unfinished = {t.number: id_of(t) for t in looked if not t.state.is_finished()}
        finished = [t for t in looked if t.state.is_finished()]
        self._fold_in(finished, running=sum(t.state == TrialState.RUNNING for t in looked))
        return self._standings

    def _full_read(self) -> Standings:
        trials = self._study.get_trials(deepcopy=False)
        self._standings = standings_of(trials, self._directions)
        self._standings.ranked = self._standings.ranked[:KEEP]
        self._standings.pruned = self._standings.pruned[:KEEP_PRUNED]
        self._next = max((t.number for t in trials), default=-1) + 1
        self._last_id = max((id_of(t) for t in trials), default=-1)
        self._unfinished = {t.number: id_of(t) for t in trials if not t.state.is_finished()}
        return self._standings

    def _fold_in(self, finished: list[FrozenTrial], *, running: int) -> None:
        s = self._standings
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        s.ranked = ranked_trials([*s.ranked, *complete], self._directions)[:KEEP]
        s.complete_values += [_key(t) for t in complete if t.values and math.isfinite(t.values[0])]
        s.pruned = _pruned_order([*s.pruned, *finished], self._directions)[:KEEP_PRUNED]
        if s.reference is None or not s.reference.state.is_finished():
            s.reference = next((t for t in finished if _is_reference(t)), s.reference)
        c = s.counts
        failed = sum(t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") not in NOT_FAILURES for t in finished)
        s.counts = Counts(complete=c.complete + len(complete),
                          pruned=c.pruned + sum(t.state == TrialState.PRUNED for t in finished),
                          failed=c.failed + failed, running=running, waiting=c.waiting)
