"""`hpo dashboard`: real optuna-dashboard over HTTP on a storage this project wrote."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from hpo.results import upload_learning_curves
from hpo.storage import open_storage

STUDY = "browse-me"
STUDY_ATTRS = {"model": "autoencoder_classifier", "metric": "val_balanced_accuracy", "fingerprint": "abc123",
               "data": {"preset": "tiny"}}


def _get(url: str, timeout: float = 10) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read(), response.headers.get("Content-Type", "")


def _get_json(url: str) -> dict:
    status, body, _ = _get(url)
    assert status == 200
    return json.loads(body)


def _write_study(url: str, name: str = STUDY) -> optuna.Study:
    """Two finished trials with reports, user attributes and learning-curve artifacts, as workers write them."""
    study = optuna.create_study(storage=open_storage(url), study_name=name, direction="maximize")
    for key, value in STUDY_ATTRS.items():
        study.set_user_attr(key, value)

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        history = [{"train_loss": 1.0 / epoch, "val_balanced_accuracy": 0.2 * epoch} for epoch in (1, 2, 3)]
        for epoch, metrics in enumerate(history, start=1):
            trial.report(metrics["val_balanced_accuracy"], epoch)
        trial.set_user_attr("epochs", 3)
        upload_learning_curves(study, trial, history)
        return 0.6 + lr

    study.optimize(objective, n_trials=2)
    return study


@contextlib.contextmanager
def _running_dashboard(storage_url: str, home: Path) -> Iterator[str]:
    """`hpo dashboard --port 0` in a subprocess; yields its base URL; always killed afterwards."""
    env = {**os.environ, "HPO_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "dashboard", "--storage", storage_url, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        url = None
        seen = []
        while url is None and time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith("optuna-dashboard: http://"):
                url = line.split()[1]
        assert url, f"dashboard did not start: {''.join(seen)}"
        assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        yield url.rstrip("/").rsplit("/dashboard", 1)[0]
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(params=["sqlite", "journal"])
def dashboard(request, tmp_path, monkeypatch) -> Iterator[tuple[str, str]]:
    """A dashboard on a storage this project wrote (SQLite, the default, and a journal file): ``(base URL, storage URL)``."""
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    url = f"sqlite:///{tmp_path / 'runs' / 'optuna.db'}" if request.param == "sqlite" else f"journal:///{tmp_path / 'runs' / 'optuna.log'}"
    _write_study(url)
    with _running_dashboard(url, tmp_path / "runs") as base:
        yield base, url


def _study_id(base: str, name: str = STUDY) -> int:
    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    (study,) = [s for s in studies if s["study_name"] == name]
    return study["study_id"]


@pytest.mark.slow
def test_dashboard_serves_study_trials_and_artifacts(dashboard):
    base, _ = dashboard
    status, page, _ = _get(f"{base}/dashboard")
    assert status == 200 and b"<html" in page.lower()

    studies = _get_json(f"{base}/api/studies")["study_summaries"]
    (summary,) = [s for s in studies if s["study_name"] == STUDY]
    attrs = {a["key"]: a["value"] for a in summary["user_attrs"]}
    assert attrs["model"] == "autoencoder_classifier" and attrs["fingerprint"] == "abc123"

    detail = _get_json(f"{base}/api/studies/{summary['study_id']}")
    assert [t["number"] for t in detail["trials"]] == [0, 1]
    trial = detail["trials"][0]
    assert [v["step"] for v in trial["intermediate_values"]] == [1, 2, 3]
    assert {a["key"]: a["value"] for a in trial["user_attrs"]}["epochs"] == "3"
    names = {a["filename"]: a for a in trial["artifacts"]}
    assert set(names) == {"learning_curves.svg", "learning_curves.csv"}

    svg = names["learning_curves.svg"]
    status, body, content_type = _get(f"{base}/artifacts/{summary['study_id']}/{trial['trial_id']}/{svg['artifact_id']}")
    assert status == 200 and content_type.startswith("image/svg+xml")
    assert body.lstrip().startswith(b"<svg") and b"val_balanced_accuracy" in body


WRITER = textwrap.dedent(
    """
    import sys, time, optuna
    from hpo.results import upload_learning_curves
    from hpo.storage import open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=sys.argv[2], storage=open_storage(sys.argv[1]))
    def objective(trial):
        x = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        for epoch in range(1, 4):
            trial.report(x * epoch, epoch)
            time.sleep(0.15)  # ~5 s in all: longer than optuna-dashboard caches a study (2 s)
        upload_learning_curves(study, trial, [{"val_loss": 1.0 / e} for e in range(1, 4)])
        return x
    study.optimize(objective, n_trials=int(sys.argv[3]))
    """
)


@pytest.mark.slow
def test_dashboard_keeps_serving_while_a_worker_writes(dashboard, tmp_path):
    base, url = dashboard
    study_id = _study_id(base)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, STUDY, "12"],
        env={**os.environ, "HPO_HOME": str(tmp_path / "runs")}, cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE, text=True,
    )
    counts = []
    try:
        while writer.poll() is None:
            detail = _get_json(f"{base}/api/studies/{study_id}")  # every poll must succeed
            counts.append(len(detail["trials"]))
            time.sleep(0.1)
        assert writer.wait(timeout=60) == 0, writer.stderr.read()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    deadline = time.monotonic() + 15  # optuna-dashboard caches a study's trials for 2 s
    detail = _get_json(f"{base}/api/studies/{study_id}")
    def settled(detail: dict) -> bool:  # the writer has exited: every trial is complete in the storage
        return len(detail["trials"]) == 14 and all(t["state"] == "Complete" for t in detail["trials"])

    while not settled(detail) and time.monotonic() < deadline:
        time.sleep(0.5)
        detail = _get_json(f"{base}/api/studies/{study_id}")
    assert len(detail["trials"]) == 14
    assert all(t["state"] == "Complete" for t in detail["trials"])
    assert counts == sorted(counts) and len(counts) >= 3
    assert any(2 < c < 14 for c in counts), f"no poll saw the study mid-run: {counts}"
    last = detail["trials"][-1]
    (svg,) = [a for a in last["artifacts"] if a["filename"] == "learning_curves.svg"]
    status, body, _ = _get(f"{base}/artifacts/{study_id}/{last['trial_id']}/{svg['artifact_id']}")
    assert status == 200 and b"val_loss" in body


@pytest.mark.slow
def test_missing_sqlite_file_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "dashboard", "--storage", f"sqlite:///{tmp_path / 'nope.db'}",
         "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HPO_HOME": str(tmp_path / "runs")},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"hpo dashboard: error: no storage at sqlite:///{tmp_path / 'nope.db'}: the SQLite file "
        f"{tmp_path / 'nope.db'} does not exist"
    ]
    assert not (tmp_path / "nope.db").exists()


def test_missing_journal_file_is_a_one_line_error(tmp_path):
    from hpo.browse._dashboard import make_dashboard_server

    with pytest.raises(FileNotFoundError, match="the journal file .*nope.log does not exist"):
        make_dashboard_server(f"journal:///{tmp_path / 'nope.log'}", port=0)
    assert not (tmp_path / "nope.log").exists()


@pytest.mark.postgres
@pytest.mark.slow
def test_dashboard_on_postgresql(postgres_url, unique_name, tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "runs"))
    study = _write_study(postgres_url, unique_name)
    try:
        with _running_dashboard(postgres_url, tmp_path / "runs") as base:
            study_id = _study_id(base, unique_name)
            detail = _get_json(f"{base}/api/studies/{study_id}")
            assert len(detail["trials"]) == 2
            trial = detail["trials"][1]
            (svg,) = [a for a in trial["artifacts"] if a["filename"] == "learning_curves.svg"]
            status, body, _ = _get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{svg['artifact_id']}")
            assert status == 200 and body.lstrip().startswith(b"<svg")
    finally:
        optuna.delete_study(study_name=study.study_name, storage=open_storage(postgres_url))


@pytest.mark.slow
def test_busy_port_is_a_one_line_error(dashboard, tmp_path):
    base, url = dashboard
    port = base.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "dashboard", "--storage", url, "--port", port],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HPO_HOME": str(tmp_path / "runs")},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"hpo dashboard: error: cannot listen on 127.0.0.1:{port}: Address already in use; "
        "pick another --port (0 = any free port)"
    ]


@pytest.mark.slow
def test_the_printed_plain_optuna_dashboard_command_serves_the_artifacts(dashboard, tmp_path):
    """`hpo run` / `hpo demo` print `optuna-dashboard URL --artifact-dir DIR`: that command shows the SVGs."""
    import shlex
    import socket

    from hpo.browse import browse_command

    _, url = dashboard
    if not url.startswith("sqlite"):
        pytest.skip("optuna-dashboard itself reads RDB URLs only")
    printed = browse_command(url).split("(or: ", 1)[1].rstrip(")")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = shlex.split(printed)
    assert command[0] == "optuna-dashboard"
    executable = Path(sys.executable).with_name("optuna-dashboard")
    process = subprocess.Popen([str(executable), *command[1:], "--port", str(port), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                study_id = _study_id(base)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "optuna-dashboard did not start"
                time.sleep(0.3)
        trial = _get_json(f"{base}/api/studies/{study_id}")["trials"][0]
        (svg,) = [a for a in trial["artifacts"] if a["filename"] == "learning_curves.svg"]
        status, body, _ = _get(f"{base}/artifacts/{study_id}/{trial['trial_id']}/{svg['artifact_id']}")
        assert status == 200 and body.lstrip().startswith(b"<svg")
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_dashboard_shows_attributes_rounded_and_stores_them_raw(tmp_path):
    from hpo.browse._dashboard import DisplayStorage

    url = f"sqlite:///{tmp_path / 'd.db'}"
    storage = open_storage(url, heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name="shown")
    trial = study.ask()
    trial.report(0.29444444444444445, 1)
    trial.set_user_attr("fold_scores", [0.8757275132275132, 0.842857142857143, 0.7888888888888889, 1, 0.9])
    trial.set_user_attr("prune_reason", "pruned by MedianPruner at step 23: best val_balanced_accuracy so far "
                                        "0.7123 < median 0.8012 of 12 complete trials at step 23")
    trial.set_user_attr("device", "cpu")
    study.tell(trial, 0.6277777777777778)
    shown = DisplayStorage(storage)
    (seen,) = shown.get_all_trials(study._study_id)
    assert seen.user_attrs["fold_scores"] == [0.8757, 0.8429, 0.7889, 1, 0.9]
    assert len(seen.user_attrs["prune_reason"]) <= 72 and seen.user_attrs["prune_reason"].endswith("… (note)")
    assert seen.user_attrs["device"] == "cpu" and seen.intermediate_values == {1: 0.2944}
    assert shown.get_trial(seen._trial_id).user_attrs == seen.user_attrs
    raw = study.trials[0]  # what export reads: untouched
    assert raw.user_attrs["fold_scores"][0] == 0.8757275132275132 and raw.intermediate_values[1] == 0.29444444444444445
    pruned = study.ask()
    pruned.report(0.41, 1)
    pruned.set_user_attr("n_parameters", 0)  # a scikit-learn model's: says nothing
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    shown_pruned = shown.get_all_trials(study._study_id)[1]
    assert study.trials[1].value == 0.41 and shown_pruned.value is None  # not mixed with the final values
    assert shown_pruned.intermediate_values == {1: 0.41} and "n_parameters" not in shown_pruned.user_attrs
    shown.set_study_user_attr(study._study_id, "written", 1)  # the dashboard's writes go through unchanged
    assert optuna.load_study(study_name="shown", storage=storage).user_attrs["written"] == 1
    assert [s.study_name for s in shown.get_all_studies()] == ["shown"]
