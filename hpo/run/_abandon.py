"""Fail RUNNING trials whose worker is gone by hand, and queue their configurations again.

Heartbeats fail a dead worker's trial on their own, also one that never beat (a worker killed
between ``study.ask()`` and its first beat), once a worker has watched it for the grace period
(:class:`hpo.storage.SilentTrials`). :func:`abandon_trials` (``hpo abandon``) does the same at once,
by hand: for a storage without heartbeats, or to free a trial known dead without waiting. An
abandoned trial does not count toward ``max_failed_trials``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from hpo.storage import study_storage, trial_id

ABANDONED = "abandoned"


@dataclass(frozen=True)
class Abandoned:
    number: int
    requeued_as: int | None
    """Number of the WAITING copy with the same parameters, or None when not re-queued."""


def abandon_trials(study: optuna.Study, numbers: Iterable[int], *, requeue: bool = True) -> list[Abandoned]:
    """Mark the RUNNING trials ``numbers`` of ``study`` FAILED (``fail_reason = "abandoned"``).

    With ``requeue``, a WAITING copy with the same parameters is enqueued for the next free worker.
    Raises :class:`LookupError` for a number the study does not have and :class:`ValueError` for a
    trial that is not running; nothing is changed then.
    """
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    wanted = list(dict.fromkeys(numbers))
    for number in wanted:
        if number not in by_number:
            raise LookupError(f"study {study.study_name!r} has no trial {number}")
        if by_number[number].state != TrialState.RUNNING:
            raise ValueError(f"trial {number} of {study.study_name!r} is {by_number[number].state.name}, not RUNNING")
    storage = study_storage(study)
    done: list[Abandoned] = []
    for number in wanted:
        stored_id = trial_id(by_number[number])
        storage.set_trial_user_attr(stored_id, "fail_reason", ABANDONED)
        try:
            storage.set_trial_state_values(stored_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            raise ValueError(f"trial {number} of {study.study_name!r} finished meanwhile; left as it is") from None
        requeued = None
        if requeue:
            before = {t.number for t in study.get_trials(deepcopy=False)}
            with warnings.catch_warnings():  # "experimental" in Optuna; the workers rely on it too
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                RetryHeartbeatStaleTrialCallback(max_retry=None)(study, storage.get_trial(stored_id))
            requeued = max({t.number for t in study.get_trials(deepcopy=False)} - before, default=None)
        done.append(Abandoned(number, requeued))
    return done
