"""Riding out a storage outage: retry with backoff for a window, then stop with one line.

A database that restarts, fails over or drops off the network for a while must not end a study:
workers and ``hpo run`` retry what failed with exponential backoff (capped at
:data:`MAX_BACKOFF_S`) for up to ``storage.outage_window_s`` seconds (study file; default
:data:`DEFAULT_OUTAGE_WINDOW_S`; ``$HPO_STORAGE_OUTAGE_S`` overrides it). One line says when an
outage starts and one when the storage is back; past the window :class:`StorageOutage` ends the
process with one line. What counts as an outage is :func:`is_storage_error`: lost or refused
connections (SQLAlchemy's ``OperationalError`` and ``InterfaceError``, also when Optuna wraps them
in ``StorageInternalError``) and an unavailable gRPC storage proxy -- not bad data, and not a
storage that could not be opened at start (that is most likely a wrong URL, and fails at once).
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

logger = logging.getLogger(__package__)

DEFAULT_OUTAGE_WINDOW_S = 300.0
OUTAGE_WINDOW_ENV = "HPO_STORAGE_OUTAGE_S"
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0
EXIT_CODE = 3
"""Exit status of a worker or ``hpo run`` stopped by a storage outage (2 is a bad input)."""

T = TypeVar("T")


class StorageOutage(ConnectionError):
    """The storage stayed unreachable for longer than the outage window."""


@contextmanager
def best_effort(what: str, log: logging.Logger) -> Iterator[None]:
    """Work that must never fail a trial (artifacts, dashboard notes): an error is one warning on ``log``
    (``what: error``), but a storage outage propagates, for the caller to wait out instead of telling it as bad data.
    """
    try:
        yield
    except Exception as error:
        if is_storage_error(error):
            raise
        log.warning("%s: %s", what, error)


DISK_FULL_EXIT_CODE = 4
"""Exit status of a command stopped by a full disk (not an outage: waiting does not free space)."""
_DISK_FULL_TEXT = ("database or disk is full", "no space left on device", "disk quota exceeded", "could not extend file")


SQLITE_FILES: set[str] = set()
"""SQLite files this process opened (:func:`hpo.storage.open_storage` adds them): where a disk I/O error may be a full disk."""


def _no_space_left(path: str) -> bool:
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024  # less than a few pages: nothing more fits


def disk_full_reason(error: BaseException) -> str:
    """The one-line reason if ``error`` (or what it wraps) is a full disk or quota; else empty.

    SQLite's ``database or disk is full``, ``OSError`` ENOSPC/EDQUOT, PostgreSQL's ``disk_full`` (53100).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f": {current.filename}" if current.filename else ""
            return f"{current.strerror or 'no space left on device'}{where}"
        if getattr(current, "sqlstate", None) == "53100" or any(
            text in str(current).lower() for text in _DISK_FULL_TEXT
        ):
            return short_reason(current)
        if "disk i/o error" in str(current).lower():  # SQLite's word for a write that found no room, among others
            full = [path for path in SQLITE_FILES if _no_space_left(path)]
            if full:
                return f"no space left on the disk of {full[0]} (SQLite: disk I/O error)"
        inner = getattr(current, "orig", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return ""


def is_storage_error(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps) means the storage could not be reached, rather than bad data.

    A full disk is not: the storage answered, and waiting does not make room (:func:`disk_full_reason`).
    """
    if disk_full_reason(error):
        return False
    sqlalchemy = sys.modules.get("sqlalchemy")
    grpc = sys.modules.get("grpc")
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if sqlalchemy is not None:
            exc = sqlalchemy.exc
            if isinstance(current, (exc.OperationalError, exc.InterfaceError, exc.PendingRollbackError)):
                return True
            if isinstance(current, exc.DBAPIError) and current.connection_invalidated:
                return True
        if grpc is not None and isinstance(current, grpc.RpcError):
            code = getattr(current, "code", lambda: None)()
            return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        current = current.__cause__  # what it wraps (``raise ... from``), not what it was raised while handling
    return False


def short_reason(error: BaseException) -> str:
    """The first line of the database's own message (``connection refused``), not SQLAlchemy's wrapping."""
    sqlalchemy = sys.modules.get("sqlalchemy")
    current: BaseException = error
    for _ in range(10):  # Optuna's error -> SQLAlchemy's -> the driver's (``orig``)
        inner = getattr(current, "orig", None) or current.__cause__
        if sqlalchemy is not None and isinstance(current, sqlalchemy.exc.PendingRollbackError):
            inner = current.__context__  # "can't reconnect until ... rolled back": the loss is what it follows
        if not isinstance(inner, BaseException):
            break
        current = inner
    text = str(current).strip() or type(current).__name__
    return text.splitlines()[0][:300]


class _DisconnectWarnings(logging.Filter):
    """Drops Optuna's multi-line "Caught an error from sqlalchemy ... Falling back" warning for a lost connection.

    Optuna logs it (with the SQL) when a trial query fails and retries another way; for a dropped
    connection that retry fails too and :class:`StorageRetry` reports the outage in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = sys.exc_info()[1]  # the filter runs inside Optuna's ``except`` block
        return not (
            str(record.msg).startswith("Caught an error from sqlalchemy")
            and error is not None
            and getattr(error, "connection_invalidated", False)
        )


def quiet_optuna_disconnect_warnings() -> None:
    """Install :class:`_DisconnectWarnings` on Optuna's RDB storage logger (once per process)."""
    target = logging.getLogger("optuna.storages._rdb.storage")
    if not any(isinstance(f, _DisconnectWarnings) for f in target.filters):
        target.addFilter(_DisconnectWarnings())


class StorageRetry:
    """Retry storage calls through an outage of up to ``window_s`` seconds; one per process, shared by its threads.

    :meth:`call` retries a function with backoff; :meth:`note` records a failure without retrying (a
    heartbeat, a batched write that can wait) and raises :class:`StorageOutage` past the window;
    :meth:`succeeded` records that the storage answered. The window runs from the first failure of an
    outage, whichever call saw it, until any call succeeds.
    """

    def __init__(
        self,
        window_s: float,
        *,
        where: str = "storage",
        label: str = "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window_s = float(window_s)
        self._where = where
        self._prefix = f"{label}: " if label else ""
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._since: float | None = None
        self._reason = ""
        self._outages = 0

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    @property
    def outages(self) -> int:
        """How many outages began so far."""
        return self._outages

    @property
    def where(self) -> str:
        return self._where

    @property
    def reason(self) -> str:
        """The last failure's reason (empty before the first)."""
        return self._reason

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)``, retried with exponential backoff while the storage is unreachable."""
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                if not is_storage_error(error):
                    raise
                left = self.note(error)
                self._sleep(min(backoff, max(left, 0.05)))
                backoff = min(2 * backoff, MAX_BACKOFF_S)
                continue
            self.succeeded()
            return result

    def note(self, error: BaseException, *, stop: bool = True) -> float:
        """Record a failed storage call; seconds left of the window. Past it, raises :class:`StorageOutage` if ``stop``."""
        now = self._clock()
        with self._lock:
            if self._since is None:
                self._since, self._reason = now, short_reason(error)
                self._outages += 1
                logger.warning(
                    "%s%s unreachable (%s); retrying for up to %g s", self._prefix, self._where, self._reason, self.window_s,
                )
            else:
                self._reason = short_reason(error)
            down = now - self._since
        if stop and down >= self.window_s:
            raise StorageOutage(
                f"{self._where} unreachable for {down:.0f} s, longer than the outage window "
                f"(storage.outage_window_s = {self.window_s:g}): {self._reason}"
            )
        return self.window_s - down

    def succeeded(self) -> None:
        """Record that the storage answered: ends an outage (one line) if one was going on."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            down, self._since = self._clock() - self._since, None
        logger.warning("%s%s reachable again after %.1f s", self._prefix, self._where, down)
