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

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import optuna
import sqlalchemy

from hpo.outage import StorageRetry, is_storage_error

logger = logging.getLogger(__name__)

REPORT_FLUSH_S = 2.0
"""Longest time a reported value waits before it is written to the storage."""


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr(key, value)`` for every item, in one transaction where the storage allows."""
    if not attrs:
        return
    backend = _rdb_backend(trial)
    if backend is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    _write_user_attrs(backend, trial._trial_id, attrs, existing=trial._cached_frozen_trial.user_attrs.keys())
    trial._cached_frozen_trial.user_attrs.update(attrs)  # what trial.set_user_attr also does


def _write_user_attrs(backend: Any, trial_id: int, attrs: Mapping[str, Any], existing: Any) -> None:
    """New keys in one bulk INSERT, keys the trial already has through Optuna's upsert; one transaction."""
    import json

    from optuna.storages._rdb import models

    new = [{"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
           for key, value in attrs.items() if key not in existing]
    with _running_trial_session(backend, trial_id) as session:
        if new:
            session.execute(sqlalchemy.insert(models.TrialUserAttributeModel), new)
        for key, value in attrs.items():
            if key in existing:
                backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)


@contextlib.contextmanager
def _running_trial_session(backend: Any, trial_id: int) -> Iterator[Any]:
    """One RDB transaction on a trial that must still be running (Optuna's check; raises as Optuna does)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
        backend.check_trial_is_updatable(trial_id, trial.state)
        yield session


class BufferedReports:
    """``trial.report`` with the storage writes batched; call :meth:`flush` before the trial is told."""

    def __init__(
        self, trial: optuna.Trial, *, flush_every_s: float = REPORT_FLUSH_S, clock: Callable[[], float] = time.monotonic,
        retry: StorageRetry | None = None,
    ) -> None:
        self._trial = trial
        self._retry = retry
        self._backend = _rdb_backend(trial)
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
        reported = self._trial._cached_frozen_trial.intermediate_values
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
        _insert_intermediate_values(self._backend, self._trial._trial_id, self._pending)
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


def _insert_intermediate_values(backend: Any, trial_id: int, values: Mapping[int, float]) -> None:
    """One bulk INSERT of new steps (the trial's cached state shows they are new); Optuna's upsert if not."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rows = []
    for step, value in values.items():
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        rows.append({"trial_id": trial_id, "step": step, "intermediate_value": stored, "intermediate_value_type": kind})
    try:
        with _running_trial_session(backend, trial_id) as session:
            session.execute(sqlalchemy.insert(models.TrialIntermediateValueModel), rows)
    except sqlalchemy.exc.IntegrityError:
        # a step is stored already (not expected: the trial's cached state said new): Optuna's row-by-row upsert
        with _create_scoped_session(backend.scoped_session, True) as session:
            for step, value in values.items():
                backend._set_trial_intermediate_value_without_commit(session, trial_id, step, value)


def _rdb_backend(trial: optuna.Trial) -> Any:
    """The trial's RDBStorage when the internals used here are present, else None."""
    try:
        from optuna.storages import RDBStorage
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401
    except ImportError:  # pragma: no cover - another Optuna layout
        return None
    backend = getattr(trial.storage, "_backend", trial.storage)  # RDB storages come inside Optuna's _CachedStorage
    required = ("_set_trial_attr_without_commit", "_set_trial_intermediate_value_without_commit", "scoped_session")
    if not isinstance(backend, RDBStorage) or not all(hasattr(backend, name) for name in required):
        return None
    if not hasattr(trial, "_cached_frozen_trial") or not hasattr(
        models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr"
    ):
        return None  # pragma: no cover - another Optuna layout
    return backend
