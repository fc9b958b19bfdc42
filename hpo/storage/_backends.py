"""Opening a storage: SQLite in WAL mode, PostgreSQL, a journal file or a gRPC proxy, with heartbeats.

The default storage is a SQLite file in the run directory (``$HPO_HOME``, default
``./hpo-runs``) opened in WAL mode with a long busy timeout, so that several local
worker processes, optuna-dashboard and the ``optuna`` CLI can share it. PostgreSQL
URLs work as they are (``postgresql://`` is read as ``postgresql+psycopg://``).
Two more kinds, for many workers (docs/performance.md, "Scaling past one machine"):

* ``journal:///path/to/file.log``: Optuna's journal file (append-only, no server);
* ``grpc://host:port``: Optuna's gRPC storage proxy (``hpo proxy`` runs one).

Neither has Optuna's heartbeats; :class:`hpo.storage._liveness.HeartbeatStorage` adds them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import warnings
from pathlib import Path
from urllib.parse import quote

import optuna
import sqlalchemy
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback

from hpo.storage._outage import SQLITE_FILES
from hpo.storage._urls import (
    SUPPORTED_URLS,
    artifact_directory,
    check_storage_url,
    grpc_address,
    journal_path,
    redact,
    resolve_storage_url,
    sqlite_file,
)

SQLITE_BUSY_TIMEOUT_S = 120
DEFAULT_HEARTBEAT_INTERVAL_S = 10
DEFAULT_GRACE_PERIOD_S = 30
DEFAULT_MAX_RETRY = 3
GRPC_CONNECT_TIMEOUT_S = 10

logger = logging.getLogger(__package__)


class StorageUnavailable(ConnectionError):
    """The storage URL points to a database that cannot be reached or opened."""


def _prepare_sqlite_file(url: str) -> None:
    """Check the file's folder exists and switch the file to WAL (persistent in the file).

    The folder is not created: a mistyped ``sqlite:///runs/x.db`` (relative to the current folder; four
    slashes make an absolute path) must not leave folders wherever the command ran. The default storage's
    folder, the run directory, is created by :func:`hpo.storage.run_directory`.
    """
    database = sqlite_file(url)
    if database is None:
        return
    folder = database.parent
    if not folder.is_dir():
        relative = "" if database.is_absolute() else (
            f" (sqlite:///{database} is relative to the current folder; sqlite:////PATH is absolute)"
        )
        raise ValueError(f"storage {url}: no folder {folder.absolute()}{relative}; create it first")
    SQLITE_FILES.add(str(database))  # a disk I/O error there may be a full disk (hpo.storage.disk_full_reason)
    with sqlite3.connect(database, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if url.startswith("postgresql"):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    return {}


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_INTERVAL_S,
    grace_period: int | None = DEFAULT_GRACE_PERIOD_S,
    max_retry: int | None = DEFAULT_MAX_RETRY,
    read_only: bool = False,
) -> BaseStorage:
    """Open (and create) the storage behind ``url`` with heartbeats and retry of stale trials.

    A trial whose worker died (no heartbeat for ``grace_period`` s) is marked failed and
    re-enqueued by Optuna's :class:`RetryHeartbeatStaleTrialCallback`. ``heartbeat_interval=None``
    opens the storage without heartbeats (readers: reports, export, the dashboard).
    Raises :class:`StorageUnavailable` with a one-line reason when the storage cannot be reached.

    ``read_only`` (readers: ``hpo studies``, ``hpo show``, ``hpo export``): an existing SQLite file is opened
    read-only, without creating tables or switching it to WAL, so that it works on a read-only file, folder
    or disk (:func:`_read_only_sqlite`). Other storages open as usual; a reader writes nothing to them.
    """
    url = check_storage_url(resolve_storage_url(url))
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    with warnings.catch_warnings():
        # heartbeats and the retry callback are "experimental" in Optuna; we rely on them knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if scheme in ("journal", "grpc"):
            inner = _journal_storage(url) if scheme == "journal" else _grpc_storage(url)
            return _with_heartbeats(inner, heartbeat_interval, grace_period, max_retry)
        try:
            if scheme == "sqlite" and read_only and (database := sqlite_file(url)) is not None and database.is_file():
                return _read_only_sqlite(url, database)
            if scheme == "sqlite":
                _prepare_sqlite_file(url)
            return _rdb_storage(url, heartbeat_interval, grace_period, max_retry)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlite3.Error) as error:
            reason = str(getattr(error, "orig", error) or error).strip().splitlines()[0]
            raise StorageUnavailable(f"cannot open storage {redact(url)}: {reason}") from None
        except (ImportError, sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as error:
            # a driver that is not installed (postgresql+pg8000://) or a URL SQLAlchemy cannot parse
            reason = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
            raise ValueError(
                f"storage URL {redact(url)!r} cannot be opened here: {reason}; supported are {SUPPORTED_URLS}"
            ) from None


def _journal_storage(url: str) -> BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    path = journal_path(url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except OSError as error:
        raise StorageUnavailable(f"cannot open journal storage {path}: {error.strerror or error}") from None


def _grpc_storage(url: str) -> BaseStorage:
    host, port = grpc_address(url)
    try:
        from optuna.storages import GrpcStorageProxy

        proxy = GrpcStorageProxy(host=host, port=port)
        proxy.wait_server_ready(timeout=GRPC_CONNECT_TIMEOUT_S)
    except ImportError:
        raise StorageUnavailable("the gRPC storage proxy needs grpcio (Optuna >= 4.2): pip install -e '.[grpc]'") from None
    except ConnectionError:
        raise StorageUnavailable(
            f"cannot open storage {url}: no gRPC storage proxy answered within {GRPC_CONNECT_TIMEOUT_S} s "
            "(start one with `hpo proxy`)"
        ) from None
    return proxy


def _with_heartbeats(
    storage: BaseStorage, heartbeat_interval: int | None, grace_period: int | None, max_retry: int | None
) -> BaseStorage:
    if not heartbeat_interval:
        return storage
    from hpo.storage._liveness import HeartbeatStorage

    return HeartbeatStorage(
        storage,
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period or DEFAULT_GRACE_PERIOD_S,
        failed_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
    )


def _rdb_storage(
    url: str, heartbeat_interval: int | None, grace_period: int | None, max_retry: int | None
) -> RDBStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry) if heartbeat_interval else None
    storage = RDBStorage(
        url,
        engine_kwargs=_engine_kwargs(url),
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=retry,
    )
    if url.startswith("sqlite"):
        _sync_at_checkpoints_only(storage.engine)
    _create_extra_indexes(storage.engine)
    return storage


EXTRA_INDEXES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("ix_trials_study_id_state", "trials", "(study_id, state)", ("sqlite", "postgresql")),
    ("ix_trials_study_id_number", "trials", "(study_id, number)", ("sqlite", "postgresql")),
    ("ix_study_system_attributes_key_prefix", "study_system_attributes", "(study_id, key varchar_pattern_ops)",
     ("postgresql",)),
)
"""Indexes Optuna does not create (it indexes ``trials.study_id`` alone), each ``(name, table, columns, dialects)``:
the admission count (``GROUP BY state``), the stale-trial check and the RUNNING-trial watch read index entries
by state, the standings tracker finds new trials by number, and on PostgreSQL a key-prefix read of the study's
system attributes (``LIKE 'dashboard:note_str:%'``, which a language collation's index cannot serve) reads
only the matching keys, instead of every trial row or attribute of the study: their cost stays flat as the
study grows (benchmarks/scale.py; the prefix read took 10 ms at 10,000 trials, 0.06 ms with the index).
Extra indexes are invisible to Optuna and to its schema migrations."""
TRIALS_BY_STATE_INDEX = EXTRA_INDEXES[0][0]


def _create_extra_indexes(engine: sqlalchemy.Engine) -> None:
    """Create the :data:`EXTRA_INDEXES` this database lacks, once per database. Only an optimisation: a
    database that refuses one (a read-only role, a race with another worker creating it) is used without it."""
    try:
        present = {table: {index["name"] for index in sqlalchemy.inspect(engine).get_indexes(table)}
                   for table in {table for _, table, _, _ in EXTRA_INDEXES}}
        missing = [(name, table, columns) for name, table, columns, dialects in EXTRA_INDEXES
                   if engine.dialect.name in dialects and name not in present[table]]
        for name, table, columns in missing:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(f"CREATE INDEX IF NOT EXISTS {name} ON {table} {columns}"))
    except sqlalchemy.exc.SQLAlchemyError as error:
        logger.debug("extra indexes not created: %s", error)


def _read_only_sqlite(url: str, database: Path) -> RDBStorage:
    """The SQLite file opened read-only (``mode=ro``): no table creation, no WAL switch, no write at all.

    A WAL database needs its ``-shm`` file to be read; where it cannot be created (a read-only folder or
    disk) and no writer has one open (no ``-wal`` file), the file is opened as immutable: nothing can
    be writing it then.
    """
    folder = database.parent
    immutable = not os.access(folder, os.W_OK) and not Path(f"{database}-wal").exists()
    target = f"file:{quote(str(database.absolute()))}?mode=ro" + ("&immutable=1" if immutable else "")

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(target, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S, check_same_thread=False)

    return RDBStorage(url, engine_kwargs={"creator": connect}, skip_table_creation=True)


def _sync_at_checkpoints_only(engine: sqlalchemy.Engine) -> None:
    """``PRAGMA synchronous=NORMAL`` on every connection: in WAL mode a commit then skips its fsync.

    A trial makes ~30 commits (attributes, one report per epoch, tell); with the default FULL each
    waits for an fsync (~5 ms here), 0.1-0.2 s per trial (benchmarks/overhead.py). With NORMAL the
    database stays consistent and survives a killed process; only a power loss or OS crash may roll
    back the last commits, which heartbeats and retries already cover.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()  # connections opened while Optuna created its tables get the pragma too


def database_reachable(url: str, *, timeout_s: int = 3) -> bool:
    """Whether a connection to the database behind ``url`` opens within ``timeout_s`` seconds."""
    try:
        engine = sqlalchemy.create_engine(resolve_storage_url(url), connect_args={"connect_timeout": timeout_s})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def artifact_store() -> FileSystemArtifactStore:
    return FileSystemArtifactStore(str(artifact_directory()))
