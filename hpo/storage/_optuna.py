"""The one module that touches Optuna's private API; everything else calls these functions.

Optuna gives no public way to get a trial's storage id, a study's storage and id, the state a
running trial cached at ``ask``, its heartbeat base class, its gRPC server factory, or a bulk write
into its RDB tables. They are read here and nowhere else, so that an Optuna release that moves them
breaks one file (and the tests that cover it), not nine. pyproject.toml bounds Optuna to the major
version the tests run on.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # noqa: F401  (re-exported for hpo.storage._liveness)
from optuna.trial import FrozenTrial


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of ``trial`` (unique across studies, unlike ``trial.number``)."""
    return trial._trial_id


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage ``study`` reads and writes through."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of ``study``."""
    return study._study_id


def cached_trial(trial: optuna.Trial) -> FrozenTrial | None:
    """The state a running trial holds in memory (what ``study.ask`` loaded, plus its own writes), if any.

    Reading it costs no query; writing into it keeps the trial's own view of its attributes current.
    """
    return getattr(trial, "_cached_frozen_trial", None)


def make_grpc_server(storage: BaseStorage, host: str, port: int, thread_pool: Any) -> Any:
    """Optuna's gRPC storage-proxy server (``optuna.storages.run_grpc_proxy_server`` without its blocking loop)."""
    from optuna.storages._grpc.server import make_server

    return make_server(storage, host, port, thread_pool)


def rdb_backend(trial: optuna.Trial) -> RDBStorage | None:
    """The trial's RDB storage when the internals the bulk writes use are present, else ``None``."""
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401
    except ImportError:  # pragma: no cover - another Optuna layout
        return None
    backend = getattr(trial.storage, "_backend", trial.storage)  # RDB storages come inside Optuna's _CachedStorage
    required = ("_set_trial_attr_without_commit", "_set_trial_intermediate_value_without_commit", "scoped_session")
    if not isinstance(backend, RDBStorage) or not all(hasattr(backend, name) for name in required):
        return None
    if cached_trial(trial) is None or not hasattr(models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr"):
        return None  # pragma: no cover - another Optuna layout
    return backend


@contextlib.contextmanager
def _running_trial_session(backend: RDBStorage, trial_id_: int) -> Iterator[Any]:
    """One RDB transaction on a trial that must still be running (Optuna's check; raises as Optuna does)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        trial = models.TrialModel.find_or_raise_by_id(trial_id_, session)
        backend.check_trial_is_updatable(trial_id_, trial.state)
        yield session


def write_user_attrs(backend: RDBStorage, trial_id_: int, attrs: Mapping[str, Any], existing: Any) -> None:
    """New keys in one bulk INSERT, keys the trial already has through Optuna's upsert; one transaction."""
    from optuna.storages._rdb import models

    new = [{"trial_id": trial_id_, "key": key, "value_json": json.dumps(value)}
           for key, value in attrs.items() if key not in existing]
    with _running_trial_session(backend, trial_id_) as session:
        if new:
            session.execute(sqlalchemy.insert(models.TrialUserAttributeModel), new)
        for key, value in attrs.items():
            if key in existing:
                backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id_, key, value)


def insert_intermediate_values(backend: RDBStorage, trial_id_: int, values: Mapping[int, float]) -> None:
    """One bulk INSERT of new steps (the trial's cached state shows they are new); Optuna's upsert if not."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rows = []
    for step, value in values.items():
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
        rows.append({"trial_id": trial_id_, "step": step, "intermediate_value": stored, "intermediate_value_type": kind})
    try:
        with _running_trial_session(backend, trial_id_) as session:
            session.execute(sqlalchemy.insert(models.TrialIntermediateValueModel), rows)
    except sqlalchemy.exc.IntegrityError:
        # a step is stored already (not expected: the trial's cached state said new): Optuna's row-by-row upsert
        with _create_scoped_session(backend.scoped_session, True) as session:
            for step, value in values.items():
                backend._set_trial_intermediate_value_without_commit(session, trial_id_, step, value)
