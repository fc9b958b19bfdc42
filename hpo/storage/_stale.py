"""Failing the trials of dead workers: those whose heartbeat stopped, and those that never beat at all.

Optuna fails a RUNNING trial whose last heartbeat is older than the grace period, but a trial that
never beat (its worker died, or lost the database, between ``study.ask()`` and its first beat) has
no heartbeat to be old, and Optuna leaves it RUNNING for good. :class:`SilentTrials` covers it: a
worker watching the study fails such a trial once *it* has seen it RUNNING without a beat for the
grace period on its own monotonic clock (no timestamp from another host, and none that never came).
The watch starts again after an outage the watcher saw, so a worker that comes back from an outage
gets a full grace period to beat before its trial is taken from it.

Both kinds are failed with a ``fail_reason`` (:data:`STALE`, :data:`NEVER_BEAT`), which
:class:`hpo.results.Counts` does not count toward ``max_failed_trials``: a dead worker says nothing
about the configuration. The storage's retry callback queues the configuration again.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from hpo.storage._liveness import HEARTBEAT_ATTR, HeartbeatStorage
from hpo.storage._optuna import (
    beaten_trial_ids,
    running_trial_ids,
    stale_trial_ids,
    study_id,
    study_storage,
    trial_id,
)

STALE = "stale"
"""``fail_reason`` of a trial whose heartbeat stopped for longer than the grace period."""
NEVER_BEAT = "no heartbeat"
"""``fail_reason`` of a trial that never beat within the grace period of a worker watching it."""


class SilentTrials:
    """RUNNING trials that never beat, watched on this process's clock; see the module docstring.

    ``outages``: how many storage outages this process has seen so far (:attr:`StorageRetry.outages`);
    when it changes, the watch starts again.
    """

    def __init__(
        self, grace_period: float, *, outages: Callable[[], int] = lambda: 0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace_period = float(grace_period)
        self._outages = outages
        self._seen_outages = outages()
        self._clock = clock
        self._first_seen: dict[int, float] = {}

    def silent_for(self, study: optuna.Study) -> dict[int, float]:
        """Seconds each RUNNING trial without a heartbeat has been seen so (by trial id); starts watching new ones."""
        watched = _running_and_beaten(study_storage(study), study_id(study))
        now, outages = self._clock(), self._outages()
        if outages != self._seen_outages:  # the storage was down meanwhile: their workers may not have been able to beat
            self._first_seen.clear()
            self._seen_outages = outages
        if watched is None:
            return {}
        running, beaten = watched
        self._first_seen = {tid: self._first_seen.get(tid, now) for tid in running if tid not in beaten}
        return {tid: now - seen for tid, seen in self._first_seen.items()}

    def overdue(self, study: optuna.Study) -> list[int]:
        """Ids of the trials silent for longer than the grace period."""
        return [tid for tid, seconds in self.silent_for(study).items() if seconds > self.grace_period]


def _running_and_beaten(storage: optuna.storages.BaseStorage, sid: int) -> tuple[list[int], set[int]] | None:
    """Ids of the RUNNING trials and of those among them with a heartbeat (``None``: no heartbeats to tell).
    On an RDB storage two indexed queries, whatever the study's size."""
    if isinstance(storage, HeartbeatStorage):
        running = storage.get_all_trials(sid, deepcopy=False, states=(TrialState.RUNNING,))
        return [trial_id(t) for t in running], {trial_id(t) for t in running if HEARTBEAT_ATTR in t.system_attrs}
    ids = running_trial_ids(storage, sid)
    beaten = beaten_trial_ids(storage, ids) if ids is not None else None
    return None if ids is None or beaten is None else (ids, beaten)


def heartbeats_enabled(storage: optuna.storages.BaseStorage) -> bool:
    getter = getattr(storage, "get_heartbeat_interval", None)
    return bool(getter and getter())


def fail_stale_trials(study: optuna.Study, silent: SilentTrials | None = None) -> list[int]:
    """Fail the study's trials of dead workers with a ``fail_reason`` and queue them again; their numbers.

    What ``optuna.storages.fail_stale_trials`` does, plus the reason, plus the trials that never beat
    (with ``silent``). A trial another worker failed first is left to it.
    """
    storage = study_storage(study)
    if not heartbeats_enabled(storage):
        return []
    reasons = dict.fromkeys(stale_trial_ids(storage, study_id(study)), STALE)
    if silent is not None:
        reasons.update((tid, NEVER_BEAT) for tid in silent.overdue(study) if tid not in reasons)
    failed: list[int] = []
    for tid, reason in reasons.items():
        try:
            storage.set_trial_user_attr(tid, "fail_reason", reason)  # while it is RUNNING: finished ones are frozen
            if storage.set_trial_state_values(tid, TrialState.FAIL):
                failed.append(tid)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished meanwhile (by its worker, or failed by another watcher)
    callback = storage.get_heartbeat_stale_trial_callback()
    numbers = []
    for tid in failed:
        trial = copy.deepcopy(storage.get_trial(tid))
        numbers.append(trial.number)
        if callback is not None:
            callback(study, trial)
    return numbers
