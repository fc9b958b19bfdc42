"""The dashboard's study API (`GET /api/studies/<id>`, the study page's load and poll) over HTTP: the same answer
as optuna-dashboard's own serialisation of the shown trials, and repeat calls serve what is cached (issue 21)."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
import sqlalchemy
from optuna_dashboard import save_note

from hpo.browse._dashboard import DisplayStorage, make_dashboard_server
from hpo.browse._study_api import system_attrs_by_trial
from hpo.storage import open_storage

N_TRIALS = 40
LONG_NOTE = "x" * 2500 + " end"
"""Longer than one system attribute (optuna-dashboard splits notes in 2,045-character parts)."""


def _write_study(url: str, name: str) -> int:
    """``N_TRIALS`` finished trials (some pruned, one failed) with reports, user attributes and notes, a running
    trial, and a study note; returns the study id."""
    storage = open_storage(url, heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    save_note(study, "# the study")

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("layers", 1, 3)
        for epoch in range(1, 4):
            trial.report(0.1 * epoch + lr / 3, epoch)
        trial.set_user_attr("val_loss", 1.0 / (1 + trial.number) + 1e-9)
        trial.set_user_attr("device", "cpu")
        trial.set_user_attr("fold_scores", [0.8757275132275132, 0.842857142857143])
        save_note(trial, LONG_NOTE if trial.number == 3 else f"trial {trial.number}: lr {lr:.6f}")
        if trial.number == 5:
            raise RuntimeError("a failed trial")
        if trial.number % 7 == 6:
            raise optuna.TrialPruned()
        return 0.5 + lr

    study.optimize(objective, n_trials=N_TRIALS, catch=(RuntimeError,))
    running = study.ask()
    running.report(0.123456789, 1)
    save_note(running, "still running")
    return study._study_id


def _reference(url: str, study_id: int) -> dict[str, Any]:
    """optuna-dashboard's own answer on the shown trials (its app alone, the storage's own reads)."""
    from optuna_dashboard import wsgi

    storage = open_storage(url, heartbeat_interval=None)
    shown = DisplayStorage(storage)
    shown.get_all_studies, shown.get_study_system_attrs = storage.get_all_studies, storage.get_study_system_attrs
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = f"/api/studies/{study_id}"
    answer: dict[str, str] = {}
    body = b"".join(wsgi(shown)(environ, lambda status, headers, exc_info=None: answer.update(status=status)))
    assert answer["status"].startswith("200")
    return json.loads(body)


@contextlib.contextmanager
def _serving(url: str, tmp_path) -> Iterator[tuple[str, Any]]:
    """``hpo dashboard``'s server (:func:`make_dashboard_server`) in a thread: ``(base URL, its WSGI app)``."""
    server, _ = make_dashboard_server(url, port=0, artifact_dir=tmp_path / "artifacts")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.get_app()
    finally:
        server.shutdown()
        server.server_close()


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


@contextlib.contextmanager
def _statements() -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements run in this process meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((" ".join(statement.split()), parameters))

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", record)


def _check_study_api(url: str, study_id: int, tmp_path) -> None:
    expected = _reference(url, study_id)
    with _serving(url, tmp_path) as (base, app):
        serialized = []
        serialize = app._serialize
        app._serialize = lambda *args: serialized.append(args[1].number) or serialize(*args)
        with _statements() as first_sql:
            first = _get_json(f"{base}/api/studies/{study_id}")
        assert first == expected  # trials, values, notes, rounding, best trial, search space: unchanged
        by_number = {t["number"]: t for t in first["trials"]}
        assert len(by_number) == N_TRIALS + 1 and sorted(serialized) == list(range(N_TRIALS + 1))
        assert by_number[3]["note"]["body"] == LONG_NOTE and by_number[8]["note"]["body"].startswith("trial 8: lr ")
        assert by_number[N_TRIALS]["note"]["body"] == "still running" and first["note"]["body"] == "# the study"
        assert by_number[6]["state"] == "Pruned" and "values" not in by_number[6]  # pruned: no stand-in value
        assert by_number[5]["state"] == "Fail" and by_number[N_TRIALS]["state"] == "Running"
        assert {a["key"]: a["value"] for a in by_number[0]["user_attrs"]}["fold_scores"] == "[0.8757, 0.8429]"
        assert by_number[N_TRIALS]["intermediate_values"] == [{"step": 1, "value": 0.1235}]
        assert any("IN (SELECT trials.trial_id" in s for s, _ in first_sql)  # the study's trials: read in bulk

        serialized.clear()
        with _statements() as second_sql:
            second = _get_json(f"{base}/api/studies/{study_id}")
        assert second == first
        assert serialized == [N_TRIALS]  # only the running trial is serialised again
        assert not [s for s, _ in second_sql if "IN (SELECT trials.trial_id" in s]  # no bulk read again
        trials_read = [s for s, _ in second_sql if s.startswith("SELECT trials.trial_id")]
        assert trials_read and all("trials.trial_id >" in s for s in trials_read)  # only trials past the finished
        children = [(s, p) for s, p in second_sql if s.startswith("SELECT trial_") and "FROM trial_" in s]
        assert children and all(len(p) == 1 for _, p in children), children  # of one trial: the running one

        polled = _get_json(f"{base}/api/studies/{study_id}?after={N_TRIALS}")  # how the page polls
        assert polled["trials"] == first["trials"][N_TRIALS:] and polled["best_trials"] == first["best_trials"]
        with pytest.raises(urllib.error.HTTPError) as bad:
            _get_json(f"{base}/api/studies/{study_id}?after=-1")
        assert bad.value.code == 400  # optuna-dashboard's own answer to a bad ``after``
        with pytest.raises(urllib.error.HTTPError) as missing:
            _get_json(f"{base}/api/studies/{study_id + 1000}")
        assert missing.value.code == 404

        trial_id = by_number[8]["trial_id"]  # a note edited in the page (its own call): served at the next load
        edit = urllib.request.Request(f"{base}/api/studies/{study_id}/{trial_id}/note", method="PUT",
                                      data=json.dumps({"version": 2, "body": "edited"}).encode(),
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(edit, timeout=60) as response:
            assert response.status == 204
        third = _get_json(f"{base}/api/studies/{study_id}")
        assert {t["number"]: t for t in third["trials"]}[8]["note"] == {"version": 2, "body": "edited"}


def test_the_study_api_answers_as_optuna_dashboard_and_rereads_nothing_cached(tmp_path):
    url = f"sqlite:///{tmp_path / 'api.db'}"
    _check_study_api(url, _write_study(url, "api"), tmp_path)


def test_the_study_api_on_postgresql(postgres_url, unique_name, tmp_path):
    study_id = _write_study(postgres_url, unique_name)
    try:
        _check_study_api(postgres_url, study_id, tmp_path)
    finally:
        optuna.delete_study(study_name=unique_name, storage=postgres_url)


def test_system_attrs_are_grouped_by_the_trial_ids_their_keys_name():
    attrs = {"dashboard:12:note_ver": 1, "dashboard:12:note_str:0": "a", "dashboard:artifacts:12:abc": "{}",
             "dashboard:note_str:0": "study", "dashboard:120:note_ver": 2, "study:metric_names": ["v"]}
    grouped = system_attrs_by_trial(attrs)
    assert grouped["12"] == {"dashboard:12:note_ver": 1, "dashboard:12:note_str:0": "a",
                             "dashboard:artifacts:12:abc": "{}"}
    assert grouped["120"] == {"dashboard:120:note_ver": 2}
    # a key lands under every number it holds (trial 0 gets note parts "0" too): harmless, the serialiser looks
    # only for the keys of its trial among them
    assert grouped["0"] == {"dashboard:12:note_str:0": "a", "dashboard:note_str:0": "study"}


def test_plain_study_reads_match_optunas(tmp_path):
    from hpo.storage import read_studies, read_study_system_attrs

    url = f"sqlite:///{tmp_path / 'reads.db'}"
    study_id = _write_study(url, "reads")
    optuna.create_study(storage=url, study_name="two", directions=["minimize", "maximize"]).set_user_attr("k", 1.5)
    storage = open_storage(url, heartbeat_interval=None)
    ours, optunas = read_studies(storage), storage.get_all_studies()
    assert [(s._study_id, s.study_name, s.directions, s.user_attrs, list(s.system_attrs.items())) for s in ours] == [
        (s._study_id, s.study_name, s.directions, s.user_attrs, list(s.system_attrs.items())) for s in optunas]
    assert read_study_system_attrs(storage, study_id) == storage.get_study_system_attrs(study_id)
    assert read_studies(open_storage(f"journal:///{tmp_path / 'j.log'}", heartbeat_interval=None)) is None
