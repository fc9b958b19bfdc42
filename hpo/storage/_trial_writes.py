"""Fewer storage transactions per trial: batched user attributes and buffered epoch reports.

Optuna writes each ``trial.set_user_attr`` and each ``trial.report`` in a transaction of its
own, with an ORM lookup per row: 3-5 ms each on PostgreSQL, 2-4 ms on SQLite, most of the
framework's cost per trial (``benchmarks/overhead.py``). On an RDB storage this module writes
the same rows with fewer transactions:

* :func:`set_user_attrs` writes many attributes in one transaction (new keys in one bulk INSERT);
* :class:`BufferedReports` keeps ``trial.report`` semantics for the trial itself (the value is
  in the trial's cached state at once, so ``trial.should_prune()`` sees it) but inserts the
  values into the storage in bulk, every :data:`REPORT_FLUSH_S` seconds and when the trial
  ends. Pruners read other trials' values only once those trials finished, so the delay
  changes no pruning decision; optuna-dashboard shows a running trial's curve up to that many
  seconds late. Given a :class:`~hpo.outage.StorageRetry`, a flush that finds the storage
  unreachable keeps its values for the next one while the trial trains on (up to the outage window).

Other storages (journal, gRPC proxy), or an Optuna whose internals differ, get Optuna's plain
per-call writes: the same stored result, more round trips.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import optuna

from hpo.storage._optuna import cached_trial, insert_intermediate_values, rdb_backend, trial_id, write_user_attrs
from hpo.storage._outage import StorageRetry, is_storage_error

logger = logging.getLogger(__package__)

REPORT_FLUSH_S = 2.0
"""Longest time a reported value waits before it is written to the storage."""


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr(key, value)`` for every item, in one transaction where the storage allows."""
    if not attrs:
        return
    backend = rdb_backend(trial)
    if backend is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    cached = cached_trial(trial)
    write_user_attrs(backend, trial_id(trial), attrs, existing=cached.user_attrs.keys())
    cached.user_attrs.update(attrs)  # what trial.set_user_attr also does


class BufferedReports:
    """``trial.report`` with the storage writes batched; call :meth:`flush` before the trial is told."""

    def __init__(
        self, trial: optuna.Trial, *, flush_every_s: float = REPORT_FLUSH_S, clock: Callable[[], float] = time.monotonic,
        retry: StorageRetry | None = None,
    ) -> None:
        self._trial = trial
        self._retry = retry
        self._backend = rdb_backend(trial)
        self._flush_every_s = flush_every_s
        self._clock = clock
        self._pending: dict[int, float] = {}
        self._last_flush = clock()
        self.transactions = 0
        """Storage writes this object made (for tests and benchmarks)."""

    @property
    def buffered(self) -> bool:
        """Whether writes are batched (an RDB storage) or go straight to ``trial.report``."""
        return self._backend is not None

    def report(self, value: float, step: int) -> None:
        """Record ``value`` at ``step`` as ``trial.report`` does; written to the storage within the flush interval."""
        if self._backend is None:
            if self._retry is not None:
                self._retry.call(self._trial.report, value, step)
            else:
                self._trial.report(value, step)
            self.transactions += 1
            return
        value, step = float(value), int(step)
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        reported = cached_trial(self._trial).intermediate_values
        if step in reported:
            logger.warning("trial %d: step %d already reported; the value is ignored", self._trial.number, step)
            return
        reported[step] = value
        self._pending[step] = value
        if self._clock() - self._last_flush >= self._flush_every_s:
            self._flush_while_training()

    def flush(self) -> None:
        """Write every value not yet in the storage, in one transaction (kept for the next flush if that fails)."""
        self._last_flush = self._clock()
        if not self._pending:
            return
        insert_intermediate_values(self._backend, trial_id(self._trial), self._pending)
        self._pending = {}
        self.transactions += 1

    def _flush_while_training(self) -> None:
        if self._retry is None:
            self.flush()
            return
        try:
            self.flush()
        except Exception as error:
            if not is_storage_error(error):
                raise
            self._retry.note(error)  # the values wait for the next flush; past the window: StorageOutage
        else:
            self._retry.succeeded()
