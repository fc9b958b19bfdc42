"""Admission: may this worker start another trial? Makes "exactly N trials" hold across workers.

Semantics (the same for 1 worker or 100 on many hosts):

* ``n_trials`` counts *finished* trials: COMPLETE + PRUNED. The study ends with exactly
  that many, however many workers share it.
* A worker starts a trial only while ``finished + running < n_trials``. The count and
  the ``study.ask()`` that creates (or takes a WAITING) trial happen under one lock shared
  by all workers of the study, so two workers cannot both start trial N: a file lock
  next to a SQLite database or a journal file, a PostgreSQL advisory lock for PostgreSQL,
  and whatever ``$HPO_LOCK_URL`` names for the gRPC proxy (which has no lock of its own).
* When the budget is taken by running trials, the worker waits instead of leaving: a
  running trial may still fail (out of memory) or go stale (its worker was killed), and
  then a replacement is needed. While waiting it fails stale trials, whose retries
  (WAITING copies with the same parameters) it then runs.
* FAILED trials do not count toward ``n_trials``; after ``max_failed_trials`` of them the
  study stops (so a configuration that always crashes cannot loop forever). A trial
  interrupted with Ctrl-C is failed, re-queued with the same parameters and not counted.
* ``timeout`` (seconds) stops a worker from *starting* trials after that time.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from hpo.results import Counts
from hpo.storage import resolve_storage_url

logger = logging.getLogger(__package__)

LOCK_URL_ENV = "HPO_LOCK_URL"


class Decision(enum.Enum):
    RUN = "run"
    WAIT = "wait"
    DONE = "done"


@dataclass(frozen=True)
class TrialBudget:
    """How many trials a study may finish, fail and for how long a worker may start them."""

    n_trials: int | None
    max_failed: int
    timeout: float | None = None
    started: float = 0.0
    """``time.monotonic()`` when the worker started (for ``timeout``)."""

    def decide(self, counts: Counts) -> tuple[Decision, str]:
        if self._all_finished(counts):
            return Decision.DONE, f"{counts.finished} of {self.n_trials} trials finished"
        if counts.failed >= self.max_failed:
            return Decision.DONE, f"{counts.failed} failed trials reached max_failed_trials={self.max_failed}"
        if self.timeout is not None and time.monotonic() - self.started >= self.timeout:
            return Decision.DONE, f"timeout of {self.timeout:g} s reached"
        if self.n_trials is None or counts.finished + counts.running < self.n_trials:
            return Decision.RUN, ""
        return Decision.WAIT, f"{counts.running} running trial(s) hold the rest of the budget"

    def stopped_on_failures(self, counts: Counts) -> bool:
        """Whether ``counts`` end the study on ``max_failed`` failures (before its trials all finished)."""
        return not self._all_finished(counts) and counts.failed >= self.max_failed

    def _all_finished(self, counts: Counts) -> bool:
        return self.n_trials is not None and counts.finished >= self.n_trials


class AdmissionLock:
    """A lock all workers of one study share while they count trials and ask for one.

    Which lock follows from ``lock_url`` (default: the storage URL itself): a file lock next to a
    SQLite or journal file, a PostgreSQL advisory lock for PostgreSQL. A gRPC proxy offers no lock,
    so its workers name one in ``$HPO_LOCK_URL`` (a ``postgresql://`` URL, or ``file:///PATH`` on a
    file system all hosts share); without one they warn and may finish a few trials too many.
    """

    def __init__(self, storage_url: str, study_name: str, lock_url: str | None = None) -> None:
        self._study_name = study_name
        lock_url = resolve_storage_url(lock_url or os.environ.get(LOCK_URL_ENV) or storage_url)
        self._url = lock_url
        self._engine: sqlalchemy.Engine | None = None
        self._path: Path | None = None
        if lock_url.startswith("sqlite"):
            database = sqlalchemy.engine.make_url(lock_url).database
            if database and database != ":memory:":
                self._path = Path(f"{database}.{_safe(study_name)}.lock")
        elif lock_url.startswith(("journal://", "file://")):
            target = Path(lock_url.split("://", 1)[1])
            self._path = target.parent / f"{target.name}.{_safe(study_name)}.lock"
            self._path.parent.mkdir(parents=True, exist_ok=True)
        elif lock_url.startswith("postgresql"):
            self._engine = sqlalchemy.create_engine(
                lock_url, pool_size=1, pool_pre_ping=True, connect_args={"connect_timeout": 10}
            )
            self._key = int.from_bytes(hashlib.sha256(f"tissue-hpo:{study_name}".encode()).digest()[:8], "big", signed=True)
        else:
            logger.warning(
                "no cross-worker admission lock for %s storage: parallel workers may finish a few trials more "
                "than n_trials (set %s to a postgresql:// URL or a file:///PATH all workers share)",
                lock_url.split(":", 1)[0], LOCK_URL_ENV,
            )

    @property
    def kind(self) -> str:
        """``file``, ``postgresql`` or ``none``."""
        return "file" if self._path is not None else "postgresql" if self._engine is not None else "none"

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._path is not None:
            with open(self._path, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        elif self._engine is not None:
            with self._engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": self._key})
                try:
                    yield
                finally:
                    try:
                        connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                        connection.commit()
                    except sqlalchemy.exc.DBAPIError:
                        # the connection died (the server restarted or dropped it): its session, and with it
                        # the session-level lock, is gone; drop the connection instead of returning it to the pool
                        connection.invalidate()
        else:
            yield

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
