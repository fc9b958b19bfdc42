"""Storage URLs: which storage a command means, the run directory, and URLs safe to print.

``--storage`` (else ``$HPO_STORAGE``, else the SQLite file in ``$HPO_HOME``, default ``./hpo-runs``)
names one of ``sqlite:///FILE``, ``postgresql://USER@HOST/DB``, ``journal:///FILE`` or ``grpc://HOST:PORT``.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy

DEFAULT_HOME = "hpo-runs"
RDB_SCHEMES = ("sqlite", "postgresql")
SCHEMES = (*RDB_SCHEMES, "journal", "grpc")
SUPPORTED_URLS = "sqlite:///FILE, postgresql://USER@HOST/DB, journal:///FILE or grpc://HOST:PORT"



def run_directory() -> Path:
    """The run directory (``$HPO_HOME`` or ``./hpo-runs``); created on demand."""
    path = Path(os.environ.get("HPO_HOME", DEFAULT_HOME))
    path.mkdir(parents=True, exist_ok=True)
    return path



def default_storage_url() -> str:
    return f"sqlite:///{(run_directory() / 'optuna.db').resolve()}"



def resolve_storage_url(url: str | None = None) -> str:
    """``url``, else ``$HPO_STORAGE``, else the SQLite file in the run directory."""
    url = url or os.environ.get("HPO_STORAGE") or default_storage_url()
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url



def check_storage_url(url: str) -> str:
    """``url`` if its scheme is one a worker can use, else ``ValueError`` naming it and the supported ones."""
    if url.split(":", 1)[0].split("+", 1)[0] not in SCHEMES:
        raise ValueError(f"unsupported storage URL {redact(url)!r}: supported are {SUPPORTED_URLS}")
    if url.startswith("sqlite") and sqlite_file(url) is None:
        raise ValueError(
            f"storage URL {url!r} is an in-memory SQLite database, gone when the process ends and seen by no "
            "worker process: name a file, sqlite:///FILE (relative to the current folder) or sqlite:////ABSOLUTE/FILE"
        )
    return url


def sqlite_file(url: str) -> Path | None:
    """The file behind a ``sqlite:`` URL; ``None`` for an in-memory database (``sqlite://``, ``:memory:``)."""
    try:
        database = sqlalchemy.engine.make_url(url).database
    except sqlalchemy.exc.ArgumentError:
        raise ValueError(f"storage URL {url!r} cannot be parsed: expected sqlite:///FILE") from None
    if not database or database == ":memory:" or "mode=memory" in url or database.startswith("file::memory:"):
        return None
    return Path(database)



def journal_path(url: str) -> Path:
    """The file behind ``journal:///abs/file.log`` (or ``journal://relative/file.log``)."""
    path = url.split("://", 1)[1] if "://" in url else ""
    if not path:
        raise ValueError(f"journal storage URL {url!r} names no file: use journal:///path/to/study.log")
    return Path(path)



def grpc_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``grpc://host:port``."""
    address = url.split("://", 1)[1].rstrip("/") if "://" in url else ""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"gRPC storage URL {url!r} needs a host and a port: grpc://HOST:PORT")
    return host, int(port)



def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url



def artifact_directory() -> Path:
    """Folder of the artifact store (``$HPO_ARTIFACTS``, else ``<run dir>/artifacts``).

    With workers on several hosts, point ``HPO_ARTIFACTS`` at a shared file system.
    """
    path = Path(os.environ.get("HPO_ARTIFACTS") or run_directory() / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
