"""The one module that touches Optuna's private API; everything else calls these functions.

Optuna gives no public way to get a trial's storage id, a study's storage and id, the state a
running trial cached at ``ask``, its heartbeat base class, its gRPC server factory, or a bulk write
into its RDB tables. They are read here and nowhere else, so that an Optuna release that moves them
breaks one file (and the tests that cover it), not nine. pyproject.toml bounds Optuna to the major
version the tests run on.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, InMemoryStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # noqa: F401  (re-exported for hpo.storage._liveness)
from optuna.study._frozen import FrozenStudy
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


def _rdb_of(storage: BaseStorage) -> RDBStorage | None:
    """The RDB storage behind ``storage`` (Optuna wraps it in a cache), if it is one and has the internals used here."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, RDBStorage) and hasattr(backend, "scoped_session") else None


def _prefix_query(session: Any, study_id_: int, prefix: str) -> dict[str, Any]:
    """The study's system attributes whose key starts with ``prefix``, read through the (study_id, key) index.

    SQLite compares keys byte by byte, so a key range reads only the matching index entries; other
    databases may sort keys by a language's collation, so they match with LIKE (and read nothing else back).
    """
    from optuna.storages._rdb import models

    model = models.StudySystemAttributeModel
    query = session.query(model.key, model.value_json).filter(model.study_id == study_id_)
    if session.get_bind().dialect.name == "sqlite":
        query = query.filter(model.key >= prefix, model.key < prefix[:-1] + chr(ord(prefix[-1]) + 1))
    else:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.filter(model.key.like(escaped + "%", escape="\\"))
    return {key: json.loads(value) for key, value in query.all() if key.startswith(prefix)}


def study_system_attrs_with_prefix(storage: BaseStorage, study_id_: int, prefix: str) -> dict[str, Any]:
    """The study system attributes whose key starts with ``prefix``.

    On an RDB storage only those rows are read (Optuna's ``get_study_system_attrs`` reads every row, and
    optuna-dashboard's notes and figures add rows to a study with every trial); elsewhere, all and filtered.
    """
    backend = _rdb_of(storage)
    if backend is None:
        return {k: v for k, v in storage.get_study_system_attrs(study_id_).items() if k.startswith(prefix)}
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        return _prefix_query(session, study_id_, prefix)


class StudyAttrWriter:
    """Reads and writes of a study's system attributes inside one :func:`study_attr_transaction`."""

    def __init__(self, storage: BaseStorage, study_id_: int, session: Any = None) -> None:
        self._storage, self._study_id, self._session = storage, study_id_, session

    def read(self, prefix: str) -> dict[str, Any]:
        """The study system attributes whose key starts with ``prefix`` (only those rows, on an RDB storage)."""
        if self._session is None:
            return study_system_attrs_with_prefix(self._storage, self._study_id, prefix)
        return _prefix_query(self._session, self._study_id, prefix)

    def write_chunks(self, prefix: str, chunks: list[str], *, version_key: str | None = None) -> None:
        """``chunks`` as ``{prefix}0``, ``{prefix}1``, ...; rows left from a longer earlier value blanked;
        ``version_key`` (a note's version) up by one. This is how optuna-dashboard keeps notes and figures."""
        existing = self.read(prefix)
        values: dict[str, Any] = {f"{prefix}{index}": chunk for index, chunk in enumerate(chunks)}
        values.update({f"{prefix}{index}": "" for index in range(len(chunks), len(existing))})
        known = set(existing)
        if version_key is not None:
            current = self.read(version_key).get(version_key)
            if current is not None:
                known.add(version_key)
            values[version_key] = int(current or 0) + 1
        if self._session is None:
            for key, value in values.items():
                self._storage.set_study_system_attr(self._study_id, key, value)
            return
        from optuna.storages._rdb import models

        model = models.StudySystemAttributeModel
        new = [{"study_id": self._study_id, "key": k, "value_json": json.dumps(v)} for k, v in values.items() if k not in known]
        if new:
            self._session.execute(sqlalchemy.insert(model), new)
        changed = [{"id_": self._study_id, "key_": k, "value_": json.dumps(v)} for k, v in values.items() if k in known]
        if changed:  # one executemany, not a statement per row
            table = model.__table__
            self._session.execute(
                sqlalchemy.update(table)
                .where(table.c.study_id == sqlalchemy.bindparam("id_"), table.c.key == sqlalchemy.bindparam("key_"))
                .values(value_json=sqlalchemy.bindparam("value_")),
                changed,
            )


@contextlib.contextmanager
def study_attr_transaction(storage: BaseStorage, study_id_: int) -> Iterator[StudyAttrWriter]:
    """One transaction on a study's system attributes that concurrent writers of the same study wait for.

    On an RDB storage it starts by locking the study's row (a no-op update: on PostgreSQL the row lock
    Optuna's own trial creation takes; on SQLite the database's write lock), so what is read inside is
    current and what is written is not interleaved with another writer's figure or note. Read trials
    through Optuna inside it, never write through Optuna (SQLite: that write would wait for this one).
    Other storages: plain reads and writes, no lock.
    """
    backend = _rdb_of(storage)
    if backend is None:
        yield StudyAttrWriter(storage, study_id_)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        study = models.StudyModel
        session.execute(sqlalchemy.update(study).where(study.study_id == study_id_).values(study_name=study.study_name))
        yield StudyAttrWriter(storage, study_id_, session)


def insert_study_system_attrs(storage: BaseStorage, study_id_: int, values: Mapping[str, Any]) -> bool:
    """Add new study system attributes in one statement, reading nothing (a new trial's note).

    Returns False, writing nothing, when one of the keys exists already (RDB storages); other storages
    write them one by one.
    """
    backend = _rdb_of(storage)
    if backend is None:
        for key, value in values.items():
            storage.set_study_system_attr(study_id_, key, value)
        return True
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    rows = [{"study_id": study_id_, "key": key, "value_json": json.dumps(value)} for key, value in values.items()]
    try:
        with _create_scoped_session(backend.scoped_session) as session:
            session.execute(sqlalchemy.insert(models.StudySystemAttributeModel), rows)
    except sqlalchemy.exc.IntegrityError:
        return False
    return True


def storage_url_of(storage: BaseStorage) -> str | None:
    """The URL an RDB storage was opened with (None for other storages)."""
    backend = _rdb_of(storage)
    return str(backend.url) if backend is not None and getattr(backend, "url", None) else None


def pruner_setting(pruner: Any, name: str) -> Any:
    """An Optuna pruner's constructor argument ``name`` (kept privately as ``_name``), or ``None``."""
    return getattr(pruner, f"_{name}", None)


def stale_trial_ids(storage: BaseStorage, study_id_: int) -> list[int]:
    """RUNNING trials Optuna's heartbeats judge stale: they beat, then fell silent past the grace period."""
    return list(storage._get_stale_trial_ids(study_id_))


def running_trial_ids(storage: BaseStorage, study_id_: int) -> list[int] | None:
    """Ids of the study's RUNNING trials, by one query on the (study_id, state) index (``None`` for storages
    other than RDB): no walk over a cached copy of every trial."""
    backend = _rdb_of(storage)
    if backend is None:
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial = models.TrialModel
    with _create_scoped_session(backend.scoped_session) as session:
        rows = (session.query(trial.trial_id)
                .filter(trial.study_id == study_id_, trial.state == optuna.trial.TrialState.RUNNING).all())
    return sorted(int(row[0]) for row in rows)


def beaten_trial_ids(storage: BaseStorage, trial_ids: Sequence[int]) -> set[int] | None:
    """Which of ``trial_ids`` have a heartbeat recorded in an RDB storage (``None`` for other storages)."""
    backend = _rdb_of(storage)
    if backend is None:
        return None
    if not trial_ids:
        return set()
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        rows = (
            session.query(models.TrialHeartbeatModel.trial_id)
            .filter(models.TrialHeartbeatModel.trial_id.in_(list(trial_ids)))
            .all()
        )
    return {row[0] for row in rows}


# -- small queries: counts, the best trials and durations without loading every trial ----------------


def rdb_queries_supported(storage: BaseStorage) -> bool:
    """Whether the small queries below work on ``storage`` (an RDB storage, perhaps inside Optuna's cache)."""
    return _rdb_of(storage) is not None


def count_trials_by_state(storage: BaseStorage, study_id_: int, excused_fail_reasons: Collection[str]) -> dict[str, int]:
    """Trials per state name (``"COMPLETE"``, ...) counted in the database, plus ``"FAIL_EXCUSED"``: FAIL
    trials whose ``fail_reason`` user attribute is one of ``excused_fail_reasons``. Two small queries.

    Only on an RDB storage (:func:`rdb_queries_supported`).
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    backend = _rdb_of(storage)
    assert backend is not None, "count_trials_by_state needs an RDB storage"
    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    with _create_scoped_session(backend.scoped_session) as session:
        rows = (session.query(trial.state, sqlalchemy.func.count(trial.trial_id))
                .filter(trial.study_id == study_id_).group_by(trial.state).all())
        counts = {state.name: int(n) for state, n in rows}
        excused = 0
        if counts.get("FAIL") and excused_fail_reasons:
            excused = (session.query(sqlalchemy.func.count(attr.trial_user_attribute_id))
                       .join(trial, trial.trial_id == attr.trial_id)
                       .filter(trial.study_id == study_id_, trial.state == optuna.trial.TrialState.FAIL,
                               attr.key == "fail_reason",
                               attr.value_json.in_([json.dumps(r) for r in excused_fail_reasons]))
                       .scalar())
    counts["FAIL_EXCUSED"] = int(excused or 0)
    return counts


SETTLE_WINDOW = 1000
"""Trial ids this far below the largest seen are settled by :class:`TrialStateCounter` (once finished): a trial
insert that commits late (PostgreSQL hands out ids before commit) is not that late."""


class TrialStateCounter:
    """:func:`count_trials_by_state` for one worker at a cost that stops growing with the study.

    Finished trials never change (Optuna refuses updates to them; ``fail_reason`` is written before FAIL), so
    the counts of the trials below a settled trial id are kept and only the rows from there on are read per
    call (an indexed range of trial ids). A trial id is settled once it and every id below it are finished
    and it lies :data:`SETTLE_WINDOW` ids below the largest seen. Only on an RDB storage.
    """

    def __init__(self, storage: BaseStorage, study_id_: int, excused_fail_reasons: Collection[str]) -> None:
        backend = _rdb_of(storage)
        assert backend is not None, "TrialStateCounter needs an RDB storage"
        self._backend = backend
        self._study_id = study_id_
        self._excused = [json.dumps(r) for r in excused_fail_reasons]
        self._settled: dict[str, int] = {"FAIL_EXCUSED": 0}
        self._below = 0
        """Trials with smaller ids are counted in ``_settled``."""

    def counts(self) -> dict[str, int]:
        """Trials per state name, plus ``"FAIL_EXCUSED"``, as :func:`count_trials_by_state` returns them."""
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        trial, attr = models.TrialModel, models.TrialUserAttributeModel
        with _create_scoped_session(self._backend.scoped_session) as session:
            rows = (session.query(trial.trial_id, trial.state)
                    .filter(trial.study_id == self._study_id, trial.trial_id >= self._below).all())
            failed = [int(i) for i, state in rows if state == optuna.trial.TrialState.FAIL]
            excused = set()
            if failed and self._excused:
                excused = {int(i) for (i,) in session.query(attr.trial_id).filter(
                    attr.trial_id.in_(failed), attr.key == "fail_reason", attr.value_json.in_(self._excused))}
        counts = dict(self._settled)
        for _, state in rows:
            counts[state.name] = counts.get(state.name, 0) + 1
        counts["FAIL_EXCUSED"] += len(excused)
        self._settle(rows, excused)
        return counts

    def _settle(self, rows: list[Any], excused: set[int]) -> None:
        if not rows:
            return
        cutoff = max(int(i) for i, _ in rows) - SETTLE_WINDOW
        unfinished = [int(i) for i, state in rows if not state.is_finished()]
        cutoff = min([cutoff, *unfinished])
        for trial_id_, state in rows:
            if int(trial_id_) < cutoff:
                self._settled[state.name] = self._settled.get(state.name, 0) + 1
                self._settled["FAIL_EXCUSED"] += int(trial_id_) in excused
        self._below = max(self._below, cutoff)


def best_trial_ids(storage: BaseStorage, study_id_: int, *, maximize: bool, limit: int) -> list[int]:
    """Ids of the ``limit`` complete trials with the best finite first value, best first (ties: the
    smaller number), and of every other trial tied with the last of them, so that a caller can order ties
    by its own secondary key. Two small queries that read only those rows. Only on an RDB storage."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    backend = _rdb_of(storage)
    assert backend is not None, "best_trial_ids needs an RDB storage"
    trial, value = models.TrialModel, models.TrialValueModel
    order = value.value.desc() if maximize else value.value.asc()
    with _create_scoped_session(backend.scoped_session) as session:
        complete = (session.query(trial.trial_id, value.value).join(value, value.trial_id == trial.trial_id)
                    .filter(trial.study_id == study_id_, trial.state == optuna.trial.TrialState.COMPLETE,
                            value.objective == 0, value.value_type == value.TrialValueType.FINITE))
        rows = complete.order_by(order, trial.number.asc()).limit(limit).all()
        ids = [int(row[0]) for row in rows]
        if rows and len(rows) == limit:  # the trials tied with the last one kept, in number order
            tied = complete.filter(value.value == rows[-1][1]).order_by(trial.number.asc()).all()
            ids += [int(row[0]) for row in tied if int(row[0]) not in ids]
    return ids


def mean_finished_seconds(storage: BaseStorage, study_id_: int) -> float | None:
    """The mean duration of the study's complete and pruned trials, computed in the database (SQLite and
    PostgreSQL; ``None`` when no trial finished). Raises :class:`NotImplementedError` for other databases."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    backend = _rdb_of(storage)
    assert backend is not None, "mean_finished_seconds needs an RDB storage"
    trial = models.TrialModel
    start, end = trial.__table__.c.datetime_start, trial.__table__.c.datetime_complete
    with _create_scoped_session(backend.scoped_session) as session:
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            seconds = (sqlalchemy.func.julianday(end) - sqlalchemy.func.julianday(start)) * 86400.0
        elif dialect == "postgresql":
            seconds = sqlalchemy.extract("epoch", end - start)
        else:
            raise NotImplementedError(dialect)
        mean = (session.query(sqlalchemy.func.avg(seconds))
                .filter(trial.study_id == study_id_,
                        trial.state.in_([optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]),
                        start.isnot(None), end.isnot(None))
                .scalar())
    return None if mean is None else float(mean)


@dataclass(frozen=True)
class StudyListing:
    """What ``hpo studies`` needs of a study, without its trials or its system attributes."""

    study_id: int
    name: str
    user_attrs: dict[str, Any]
    started: datetime.datetime | None


def list_study_summaries(storage: BaseStorage) -> list[StudyListing]:
    """Every study in ``storage``, oldest first: names, user attributes and first trial start.

    On an RDB storage four small queries (Optuna's ``get_all_study_summaries`` loads every trial of every
    study, and its ``get_all_studies`` every study system attribute: optuna-dashboard's notes and figures);
    elsewhere through Optuna's ``get_all_studies`` and each study's trials.
    """
    backend = _rdb_of(storage)
    if backend is None:
        listed = []
        for study in storage.get_all_studies():
            trials = storage.get_all_trials(study._study_id, deepcopy=False)
            started = min((t.datetime_start for t in trials if t.datetime_start is not None), default=None)
            listed.append(StudyListing(study._study_id, study.study_name, dict(study.user_attrs), started))
        return listed
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    study, attr, trial = models.StudyModel, models.StudyUserAttributeModel, models.TrialModel
    with _create_scoped_session(backend.scoped_session) as session:
        studies = session.query(study.study_id, study.study_name).order_by(study.study_id).all()
        attrs: dict[int, dict[str, Any]] = {}
        for study_id_, key, value in session.query(attr.study_id, attr.key, attr.value_json).all():
            attrs.setdefault(study_id_, {})[key] = json.loads(value)
        start = trial.__table__.c.datetime_start
        starts = dict(session.query(trial.study_id, sqlalchemy.func.min(start)).group_by(trial.study_id).all())
    return [StudyListing(int(i), name, attrs.get(i, {}), _as_datetime(starts.get(i))) for i, name in studies]


def _as_datetime(value: Any) -> datetime.datetime | None:
    """A stored start time (naive UTC; SQLite hands back MIN() of a DATETIME column as text) in local time,
    as Optuna shows it."""
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime.fromisoformat(str(value))
    return value.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)


def trial_ids_with_user_attr(storage: BaseStorage, study_id_: int, key: str, value: Any) -> list[int]:
    """Ids of the study's trials whose user attribute ``key`` is ``value`` (JSON-equal), by trial id;
    one query on the attribute rows. Only on an RDB storage."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    backend = _rdb_of(storage)
    assert backend is not None, "trial_ids_with_user_attr needs an RDB storage"
    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    with _create_scoped_session(backend.scoped_session) as session:
        rows = (session.query(trial.trial_id).join(attr, attr.trial_id == trial.trial_id)
                .filter(trial.study_id == study_id_, attr.key == key, attr.value_json == json.dumps(value))
                .order_by(trial.trial_id).all())
    return [int(row[0]) for row in rows]


def trial_numbers_from(
    storage: BaseStorage, study_id_: int, first_trial_id: int, first_number: int = 0
) -> list[tuple[int, int]]:
    """``(number, trial id)`` of the study's trials whose id is at least ``first_trial_id`` and whose number is at
    least ``first_number``, by number: one query on a range of the primary key (a lookup by number scans the
    study's rows: Optuna indexes no number). Only on an RDB storage."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    backend = _rdb_of(storage)
    assert backend is not None, "trial_numbers_from needs an RDB storage"
    trial = models.TrialModel
    with _create_scoped_session(backend.scoped_session) as session:
        rows = (session.query(trial.number, trial.trial_id)
                .filter(trial.trial_id >= first_trial_id, trial.study_id == study_id_, trial.number >= first_number)
                .order_by(trial.number).all())
    return [(int(number), int(trial_id_)) for number, trial_id_ in rows]


class _TrialsView(InMemoryStorage):
    """A read-only in-memory storage of one study whose trials are the given frozen trials, kept as they are."""

    def __init__(self, trials: Collection[FrozenTrial], directions: Collection[Any]) -> None:
        super().__init__()
        self.view_study_id = self.create_new_study(list(directions), "view")
        self._trials = sorted(trials, key=lambda t: t.number)
        self._by_id = {t._trial_id: t for t in self._trials}
        self._by_number = {t.number: t for t in self._trials}

    def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return [t for t in self._trials if states is None or t.state in states]

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._by_id[trial_id]

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._by_number[trial_number]._trial_id

    def get_trial_number_from_id(self, trial_id: int) -> int:
        return self._by_id[trial_id].number

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        directions = self.get_study_directions(study_id)
        if len(directions) > 1:
            raise RuntimeError("Best trial can be obtained only for single-objective optimization.")
        complete = [t for t in self._trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise ValueError("No trials are completed yet.")
        pick = max if directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
        return pick(complete, key=lambda t: t.values[0])


def read_only_view(trials: Collection[FrozenTrial], directions: Collection[Any]) -> optuna.Study:
    """A study holding ``trials`` (their numbers and ids kept) whose reads hand out the trials, never copies.

    For Optuna's plotting and importance functions, which read ``study.trials`` (a deep copy of every
    trial: 47 s of a 10,000-trial report) and change no trial. Nothing may be written into it.
    """
    storage = _TrialsView(trials, directions)
    return optuna.load_study(study_name="view", storage=storage)


def _json_value(text: str) -> Any:
    """``json.loads(text)`` for an attribute Optuna stored (``json.dumps``); a JSON number (most attributes) is
    parsed as ``json`` parses it, by ``int`` or ``float``, without its decoder's overhead (40% of 270,000 values)."""
    if text[:1] in "-0123456789":
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    return json.loads(text)


def read_trials(storage: BaseStorage, study_id_: int) -> list[FrozenTrial] | None:
    """Every trial of the study, by number, read with six plain queries (no ORM objects), as Optuna's RDB
    storage builds them; ``None`` when ``storage`` is not an RDB storage.

    Optuna's own read builds an ORM object per row: 10,000 trials of a real study took 20-35 s of a
    35-60 s ``hpo report`` on a loaded 2-core machine. For read-only surfaces (reports), not workers.
    """
    backend = _rdb_of(storage)
    if backend is None:
        return None
    from optuna import distributions as dists
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    def local(value: datetime.datetime | None) -> datetime.datetime | None:
        if value is None:
            return None  # stored as naive UTC (see optuna.storages._rdb.models.TrialModel)
        return value.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)

    trial_table = models.TrialModel.__table__
    rows: dict[int, dict[str, Any]] = {}
    parsed: dict[str, Any] = {}
    with _create_scoped_session(backend.scoped_session) as session:
        in_study = sqlalchemy.select(trial_table.c.trial_id).where(trial_table.c.study_id == study_id_)

        def children(model: Any, *columns: str) -> Any:
            table = model.__table__
            order = [table.c[c] for c in table.primary_key.columns.keys()]
            query = sqlalchemy.select(table.c.trial_id, *(table.c[c] for c in columns))
            return session.execute(query.where(table.c.trial_id.in_(in_study)).order_by(*order))

        for r in session.execute(sqlalchemy.select(trial_table).where(trial_table.c.study_id == study_id_)):
            rows[r.trial_id] = {"number": r.number, "state": r.state, "start": local(r.datetime_start),
                                "complete": local(r.datetime_complete), "values": {}, "params": {},
                                "distributions": {}, "user": {}, "system": {}, "steps": {}}
        for trial_id_, objective, value, kind in children(models.TrialValueModel, "objective", "value", "value_type"):
            rows[trial_id_]["values"][objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
        for trial_id_, name, value, text in children(models.TrialParamModel, "param_name", "param_value",
                                                      "distribution_json"):
            if text not in parsed:
                parsed[text] = dists.json_to_distribution(text)
            rows[trial_id_]["distributions"][name] = parsed[text]
            rows[trial_id_]["params"][name] = parsed[text].to_external_repr(value)
        for trial_id_, key, text in children(models.TrialUserAttributeModel, "key", "value_json"):
            rows[trial_id_]["user"][key] = _json_value(text)
        for trial_id_, key, text in children(models.TrialSystemAttributeModel, "key", "value_json"):
            rows[trial_id_]["system"][key] = _json_value(text)
        for trial_id_, step, value, kind in children(models.TrialIntermediateValueModel, "step", "intermediate_value",
                                                     "intermediate_value_type"):
            rows[trial_id_]["steps"][step] = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value(
                value, kind)
    trials = [
        FrozenTrial(
            number=r["number"], state=r["state"], value=None,
            values=[r["values"][i] for i in sorted(r["values"])] if r["values"] else None,
            datetime_start=r["start"], datetime_complete=r["complete"], params=r["params"],
            distributions=r["distributions"], user_attrs=r["user"], system_attrs=r["system"],
            intermediate_values=r["steps"], trial_id=trial_id_,
        )
        for trial_id_, r in rows.items()
    ]
    return sorted(trials, key=lambda t: t.number)


def warm_trial_cache(study: optuna.Study) -> bool:
    """Fill Optuna's cache of a study's trials (an RDB storage's ``_CachedStorage``) with :func:`read_trials`,
    as its own first read would, with plain queries instead of ORM objects (several times faster).

    Afterwards Optuna reads, as always, only the trials unfinished at this read and those created since.
    Returns False, reading nothing, when the storage is not such a cache or already holds the study's trials.
    """
    return warm_study_cache(study._storage, study._study_id)


def cached_reader(storage: BaseStorage) -> BaseStorage:
    """An RDB storage wrapped in Optuna's trial cache (what ``optuna.load_study`` and plain optuna-dashboard
    use): a finished trial is read once, later reads fetch only unfinished and new trials. For a long-lived
    reader (the dashboard); warm it per study with :func:`warm_study_cache`. Other storages come back as they are.
    """
    from optuna.storages._cached_storage import _CachedStorage

    if isinstance(storage, RDBStorage) and _rdb_of(storage) is not None:
        return _CachedStorage(storage)
    return storage


def warm_study_cache(storage: BaseStorage, study_id_: int) -> bool:
    """:func:`warm_trial_cache` for the study ``study_id_`` of ``storage`` (a :func:`cached_reader`)."""
    from optuna.storages._cached_storage import _CachedStorage, _StudyInfo

    if not isinstance(storage, _CachedStorage) or _rdb_of(storage) is None:
        return False
    if not all(hasattr(storage, name) for name in ("_lock", "_studies", "_add_trials_to_cache")):
        return False  # pragma: no cover - another Optuna layout
    with storage._lock:
        info = storage._studies.get(study_id_)
        if info is not None and (info.trials or info.last_finished_trial_id >= 0):
            return False
        trials = read_trials(storage, study_id_) or []
        info = storage._studies.setdefault(study_id_, _StudyInfo())
        storage._add_trials_to_cache(study_id_, trials)
        for trial in trials:  # what Optuna's _read_trials_from_remote_storage records
            if trial.state.is_finished():
                info.last_finished_trial_id = max(info.last_finished_trial_id, trial._trial_id)
            else:
                info.unfinished_trial_ids.add(trial._trial_id)
    return True


def read_studies(storage: BaseStorage) -> list[FrozenStudy] | None:
    """Every study with its directions and attributes, as Optuna's RDB ``get_all_studies`` builds them (attributes
    in the order of their rows), read with four plain queries instead of an ORM object per row; ``None`` when
    ``storage`` is not an RDB storage. optuna-dashboard reads this on every study page load and poll: a study of
    10,000 trials holds 20,000 system attribute rows (its trials' notes), 1.5-3 s through the ORM."""
    backend = _rdb_of(storage)
    if backend is None:
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    def by_study(model: Any, *columns: str) -> dict[int, list[Any]]:
        table = model.__table__
        found: dict[int, list[Any]] = {}
        order = [table.c[c] for c in table.primary_key.columns.keys()]
        for row in session.execute(sqlalchemy.select(table.c.study_id, *(table.c[c] for c in columns)).order_by(*order)):
            found.setdefault(row[0], []).append(row[1:])
        return found

    with _create_scoped_session(backend.scoped_session) as session:
        study = models.StudyModel.__table__
        studies = session.execute(sqlalchemy.select(study.c.study_id, study.c.study_name).order_by(study.c.study_id)).all()
        directions = by_study(models.StudyDirectionModel, "objective", "direction")
        user_attrs = by_study(models.StudyUserAttributeModel, "key", "value_json")
        system_attrs = by_study(models.StudySystemAttributeModel, "key", "value_json")
    return [
        FrozenStudy(study_name=name, direction=None,
                    directions=[d for _, d in sorted(directions.get(study_id_, []), key=lambda d: d[0])],
                    user_attrs={k: json.loads(v) for k, v in user_attrs.get(study_id_, [])},
                    system_attrs={k: _json_value(v) for k, v in system_attrs.get(study_id_, [])}, study_id=study_id_)
        for study_id_, name in studies
    ]


def read_study_system_attrs(storage: BaseStorage, study_id_: int) -> dict[str, Any] | None:
    """The study's system attributes in the order of their rows (as :func:`read_studies`), one plain query;
    ``None`` when ``storage`` is not an RDB storage."""
    backend = _rdb_of(storage)
    if backend is None:
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    table = models.StudySystemAttributeModel.__table__
    query = (sqlalchemy.select(table.c.key, table.c.value_json).where(table.c.study_id == study_id_)
             .order_by(table.c.study_system_attribute_id))
    with _create_scoped_session(backend.scoped_session) as session:
        return {key: _json_value(value) for key, value in session.execute(query)}


def with_system_attrs(trial: FrozenTrial, system_attrs: dict[str, Any]) -> FrozenTrial:
    """``trial`` (a copy the caller made) with ``system_attrs``, for display copies; returns it."""
    trial._system_attrs = system_attrs
    return trial
