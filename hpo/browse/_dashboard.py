"""optuna-dashboard on the project's storage and artifact store.

The dashboard is optuna-dashboard's own WSGI application (:func:`optuna_dashboard.wsgi`)
served by the same threaded ``wsgiref`` server its CLI uses; what this module adds is the
project's storage (SQLite in WAL mode with a long busy timeout, so the dashboard reads while
workers write, or PostgreSQL), the artifact store the workers upload to, a loopback default
and a bound port known before serving (``port=0`` picks a free one). The app reads the storage
through :class:`DisplayStorage`: trial attributes rounded to 4 significant digits and long texts
cut for the page (optuna-dashboard prints them on one unbreakable line), pruned trials without
Optuna's stand-in value; the stored values, which ``hpo export`` reads, are untouched.

A study of 10,000 trials loads in seconds, not minutes (issue 21): the storage is read through Optuna's trial
cache (what plain optuna-dashboard uses), warmed with plain queries, so a page load or poll rereads only the
unfinished and new trials; studies and their system attributes (20,000 note rows) are read without ORM
objects; and the study API serialises each trial with its own attributes only (:mod:`hpo.browse._study_api`).
"""

from __future__ import annotations

import copy
import logging
import math
import shlex
import socket
from collections.abc import Callable, Container
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hpo.browse._study_api import LinearStudyDetail
from hpo.storage import (
    artifact_directory,
    cached_reader,
    journal_path,
    open_storage,
    read_studies,
    read_study_system_attrs,
    redact,
    resolve_storage_url,
    warm_study_cache,
    with_system_attrs,
)
from hpo.storage import trial_id as id_of_trial

logger = logging.getLogger(__package__)

DISPLAY_DIGITS = 4
DISPLAY_TEXT = 72
"""Characters of a text attribute the trial page shows (the trial's note has it in full)."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _LoggingRequestHandler(WSGIRequestHandler):
    """Request lines go to ``logging`` (debug) instead of stderr."""

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def display_value(value: Any) -> Any:
    """``value`` as a trial page shows it: floats to 4 significant digits (lists too), long texts cut."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{DISPLAY_DIGITS}g}")
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [display_value(float(v)) if isinstance(v, float) else v for v in value]
    if isinstance(value, str) and len(value) > DISPLAY_TEXT:
        return value[: DISPLAY_TEXT - 12].rstrip() + " … (note)"
    return value


def display_trial(trial: FrozenTrial) -> FrozenTrial:
    """A copy of ``trial`` as a page shows it: user attributes and reported values rounded, long texts cut.

    Attributes are listed by key (whichever way the storage read them). Attributes that say nothing are left
    out (``n_parameters`` 0: a scikit-learn model), and a pruned trial
    shows no value: Optuna stores its last reported value as one (for a cross-validated model, the last
    fold's score), which the dashboard's history would mix with the complete trials' final values. Its
    reports, and its note, still show where it stopped.
    """
    shown = copy.copy(trial)
    shown.user_attrs = {key: display_value(value) for key, value in sorted(trial.user_attrs.items())
                        if not (key == "n_parameters" and value == 0)}
    with_system_attrs(shown, dict(sorted(trial.system_attrs.items())))  # by key, as the tables' index reads them
    shown.intermediate_values = {step: display_value(value) for step, value in trial.intermediate_values.items()}
    if trial.state == TrialState.PRUNED:
        shown.values = None
    return shown


def _passed_through(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, name)(*args, **kwargs)

    method.__name__ = name
    return method


class _Display:
    """What :class:`DisplayStorage` does itself; every other storage call goes to the storage unchanged."""

    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner
        self._shown: dict[int, FrozenTrial] = {}
        """Finished trials as shown (they no longer change): each is converted once, not on every page load."""
        self._warmed: set[int] = set()

    def __getattr__(self, name: str) -> Any:  # heartbeats, remove_session, ...
        return getattr(self.inner, name)

    def _display(self, trial: FrozenTrial) -> FrozenTrial:
        if not trial.state.is_finished():
            return display_trial(trial)
        key = id_of_trial(trial)
        shown = self._shown.get(key)
        if shown is None:
            shown = self._shown[key] = display_trial(trial)
        return shown

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._display(self.inner.get_trial(trial_id))

    def get_all_studies(self) -> list[Any]:  # on every study page load and poll (optuna-dashboard's get_study)
        studies = read_studies(self.inner)
        return self.inner.get_all_studies() if studies is None else studies

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        attrs = read_study_system_attrs(self.inner, study_id)
        return self.inner.get_study_system_attrs(study_id) if attrs is None else attrs

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        if study_id not in self._warmed:  # a cached reader's first read of the study: plain queries, no ORM
            warm_study_cache(self.inner, study_id)
            self._warmed.add(study_id)
        return [self._display(t) for t in self.inner.get_all_trials(study_id, deepcopy=False, states=states)]


DisplayStorage = type("DisplayStorage", (_Display, BaseStorage), {
    "__module__": __name__,
    **{name: _passed_through(name) for name in BaseStorage.__abstractmethods__ if name not in vars(_Display)},
})
DisplayStorage.__doc__ = """The storage as optuna-dashboard's pages show it (:func:`display_trial`); writes pass through."""


def _check_sqlite_file_exists(url: str) -> None:
    """A dashboard on an explicitly named SQLite file that does not exist is a typo, not a new study."""
    database = sqlalchemy.engine.make_url(url).database
    if database and database != ":memory:" and not Path(database).exists():
        raise FileNotFoundError(f"no storage at {url}: the SQLite file {database} does not exist")


def make_dashboard_server(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    artifact_dir: str | Path | None = None,
) -> tuple[WSGIServer, str]:
    """Open the storage, build optuna-dashboard's app and bind it; returns ``(server, url)``.

    ``storage_url`` defaults like every other command (``$HPO_STORAGE`` or the run directory's
    SQLite file); an explicitly named SQLite file must exist. ``artifact_dir`` defaults to the
    project's artifact directory (``$HPO_ARTIFACTS`` or ``<run dir>/artifacts``).
    Raises :class:`OSError` when the port is taken.
    """
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import wsgi

    url = resolve_storage_url(storage_url)
    if storage_url and url.startswith("sqlite"):
        _check_sqlite_file_exists(url)
    if url.startswith("journal") and not journal_path(url).exists():
        raise FileNotFoundError(f"no storage at {url}: the journal file {journal_path(url)} does not exist")
    storage = cached_reader(open_storage(url, heartbeat_interval=None))
    artifacts = Path(artifact_dir) if artifact_dir else artifact_directory()
    artifacts.mkdir(parents=True, exist_ok=True)
    shown = DisplayStorage(storage)
    app = LinearStudyDetail(wsgi(shown, artifact_store=FileSystemArtifactStore(str(artifacts))), shown)
    try:
        server = make_server(host, port, app, server_class=_ThreadedWSGIServer,
                             handler_class=_LoggingRequestHandler)
    except OSError as error:
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}; "
                      "pick another --port (0 = any free port)") from None
    shown_host = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    address = f"http://{shown_host}:{server.server_port}/dashboard/"
    logger.info("optuna-dashboard on %s (artifacts in %s) at %s", redact(url), artifacts, address)
    return server, address


def browse_command(storage_url: str, *, storage_given: bool = True) -> str:
    """The commands that show ``storage_url`` in optuna-dashboard with its artifacts (learning curves, confusion matrices).

    ``hpo dashboard`` (with ``--storage`` unless ``storage_given`` is false: the default storage)
    and, for URLs optuna-dashboard reads itself, the plain ``optuna-dashboard ... --artifact-dir``.
    """
    shown = shlex.quote(redact(storage_url))
    command = "hpo dashboard" + (f" --storage {shown}" if storage_given else "")
    if storage_url.startswith(("sqlite", "postgresql", "mysql")):
        command += f"   (or: optuna-dashboard {shown} --artifact-dir {shlex.quote(str(artifact_directory()))})"
    return command


def serve_dashboard(
    storage_url: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    artifact_dir: str | Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve optuna-dashboard until interrupted; ``on_ready(url)`` is called once it listens."""
    server, address = make_dashboard_server(storage_url, host=host, port=port, artifact_dir=artifact_dir)
    if on_ready is not None:
        on_ready(address)
    try:
        server.serve_forever()
    finally:
        server.server_close()
