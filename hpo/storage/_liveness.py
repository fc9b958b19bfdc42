"""Heartbeats for storages Optuna gives none: journal files and the gRPC storage proxy.

Optuna's heartbeats (``record_heartbeat``, ``fail_stale_trials``, the retry callback) exist
only for its RDB storage, where the database clock dates every beat. :class:`HeartbeatStorage`
wraps any other storage and implements the same :class:`~optuna.storages._heartbeat.BaseHeartbeat`
interface on top of it, so the worker loop, ``optuna.storages.fail_stale_trials`` and
:class:`~optuna.storages.RetryFailedTrialCallback` work unchanged:

* a beat writes a fresh value into the trial's system attribute ``hpo:heartbeat``;
* a trial is stale when *this* process has seen the same beat value for longer than
  ``grace_period`` seconds of its own monotonic clock.

Judging staleness by what the reader observed, not by timestamps written on another host,
makes it immune to clock skew between hosts. The price: a worker that starts after a trial's
owner died needs ``grace_period`` seconds of watching before it fails that trial.
Trials that never beat are not judged stale here; a watching worker fails them after its own
grace period of watching (:class:`hpo.storage._stale.SilentTrials`).
"""

from __future__ import annotations

import abc
import itertools
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpo.storage._optuna import BaseHeartbeat, trial_id

HEARTBEAT_ATTR = "hpo:heartbeat"


def _delegating(cls: type) -> type:
    """Give ``cls`` a method forwarding to ``self._storage`` for every public ``BaseStorage`` method."""

    def forward(name: str) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return getattr(self._storage, name)(*args, **kwargs)

        method.__name__ = method.__qualname__ = name
        method.__doc__ = getattr(BaseStorage, name).__doc__
        return method

    for name, member in vars(BaseStorage).items():
        if callable(member) and not name.startswith("_") and name not in vars(cls):
            setattr(cls, name, forward(name))
    abc.update_abstractmethods(cls)
    return cls


@_delegating
class HeartbeatStorage(BaseStorage, BaseHeartbeat):
    """``storage`` with heartbeats kept as trial system attributes (see the module docstring)."""

    def __init__(
        self,
        storage: BaseStorage,
        *,
        heartbeat_interval: int,
        grace_period: int,
        failed_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if heartbeat_interval <= 0 or grace_period <= heartbeat_interval:
            raise ValueError(
                f"need 0 < heartbeat_interval < grace_period, got {heartbeat_interval} and {grace_period}"
            )
        self._storage = storage
        self._interval = heartbeat_interval
        self._grace = grace_period
        self._callback = failed_trial_callback
        self._clock = clock
        self._beats = itertools.count()
        self._origin = f"{socket.gethostname()}:{os.getpid()}"
        self._seen: dict[int, tuple[Any, float]] = {}

    @property
    def grace_period(self) -> int:
        """Seconds a beat may stay unchanged before its trial counts as stale."""
        return self._grace

    def __getattr__(self, name: str) -> Any:  # storage-specific extras (e.g. a journal's backend)
        if name == "_storage":
            raise AttributeError(name)
        return getattr(self._storage, name)

    def record_heartbeat(self, trial_id: int) -> None:
        beat = f"{self._origin}:{next(self._beats)}:{time.time():.3f}"
        self._storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, beat)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = self._clock()
        running = self._storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        stale: list[int] = []
        watched: dict[int, tuple[Any, float]] = {}
        for trial in running:
            beat = trial.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None:
                continue
            previous = self._seen.get(trial_id(trial))
            if previous is None or previous[0] != beat:
                watched[trial_id(trial)] = (beat, now)
            else:
                watched[trial_id(trial)] = previous
                if now - previous[1] > self._grace:
                    stale.append(trial_id(trial))
        self._seen = watched  # forget trials that finished
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._callback

    def __repr__(self) -> str:
        return f"HeartbeatStorage({self._storage!r}, interval={self._interval}, grace={self._grace})"
