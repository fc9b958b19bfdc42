"""Journal files and the gRPC storage proxy: real workers, exact counts, heartbeats and retries on both."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import optuna
import pytest
from optuna.trial import TrialState

from hpo.run import AdmissionLock, launch
from hpo.storage import StorageUnavailable, open_storage
from hpo.storage import _backends as storage_module
from hpo.storage._liveness import HEARTBEAT_ATTR, HeartbeatStorage
from tests.run.test_workers import FINISHED, count, kill_one_worker_and_finish, tiny_study, trials_of

HPO = [sys.executable, "-m", "hpo.cli"]

pytestmark = [  # these tests drive Optuna's heartbeat machinery by hand, as hpo.worker does
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning"),
]


@pytest.fixture(autouse=True)
def _private_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "hpo-home"))
    monkeypatch.delenv("HPO_LOCK_URL", raising=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def grpc_proxy(database_url: str) -> Iterator[str]:
    """A real `hpo proxy` process over ``database_url``; yields its grpc:// URL."""
    port = _free_port()
    process = subprocess.Popen(HPO + ["proxy", "--storage", database_url, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        assert f"grpc://127.0.0.1:{port}" in line, line
        yield f"grpc://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


# -- heartbeats on storages Optuna gives none ------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_trial_is_stale_once_its_beat_stays_unchanged_for_the_grace_period(tmp_path):
    clock = _Clock()
    storage = HeartbeatStorage(open_storage(f"journal:///{tmp_path}/j.log", heartbeat_interval=None),
                               heartbeat_interval=1, grace_period=5, clock=clock)
    study = optuna.create_study(storage=storage, study_name="beats")
    beating, silent, never = study.ask(), study.ask(), study.ask()
    storage.record_heartbeat(beating._trial_id)
    storage.record_heartbeat(silent._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []
    clock.now = 4.0
    storage.record_heartbeat(beating._trial_id)  # a new beat restarts its clock
    assert storage._get_stale_trial_ids(study._study_id) == []
    clock.now = 8.0
    # silent: unchanged for 8 s > 5; beating: unchanged for 4 s; never: no beat at all, never judged
    assert storage._get_stale_trial_ids(study._study_id) == [silent._trial_id]
    assert HEARTBEAT_ATTR not in storage.get_trial(never._trial_id).system_attrs


def test_heartbeat_settings_are_checked():
    with pytest.raises(ValueError, match="heartbeat_interval < grace_period"):
        HeartbeatStorage(optuna.storages.InMemoryStorage(), heartbeat_interval=10, grace_period=10)


@pytest.mark.slow
def test_journal_storage_fails_and_requeues_a_stale_trial_through_optunas_own_machinery(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2, max_retry=2)
    study = optuna.create_study(storage=storage, study_name="stale")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(trial._trial_id)
    optuna.storages.fail_stale_trials(study)  # first sight: starts watching
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    trials = trials_of(url, "stale")
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.WAITING and trials[1].system_attrs["failed_trial"] == 0
    assert trials[1].params == trials[0].params


# -- journal file -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_three_workers_on_a_journal_file_finish_exactly_n_trials(tmp_path, tiny_dataset, tiny_data_config):
    url = f"journal:///{tmp_path}/runs/optuna.log"
    path = tiny_study(tmp_path, tiny_data_config, name="journal")
    result = launch(path, workers=3, overrides={"n_trials": 7}, storage_url=url, poll_seconds=0.5)
    assert result.ok, result.exit_codes
    trials = trials_of(url, "journal")
    assert count(trials, *FINISHED) == 7 and len(trials) == 7
    assert len({t.user_attrs["worker"] for t in trials}) >= 2
    assert AdmissionLock(url, "journal").kind == "file"
    assert (tmp_path / "runs" / "optuna.log.journal.lock").exists()  # the admission lock sits next to it


@pytest.mark.parametrize("kind", ["journal", "grpc"])
@pytest.mark.slow
def test_sigkilled_worker_is_retried_and_the_study_completes(kind, tmp_path, tiny_dataset, tiny_data_config, monkeypatch):
    with contextlib.ExitStack() as stack:
        if kind == "journal":
            url = f"journal:///{tmp_path}/optuna.log"
        else:
            monkeypatch.setenv("HPO_LOCK_URL", f"file:///{tmp_path}/admission")
            url = stack.enter_context(grpc_proxy(f"sqlite:///{tmp_path}/behind.db"))
        kill_one_worker_and_finish(url, tmp_path, tiny_data_config)


def test_journal_url_without_a_file_is_a_clear_error():
    with pytest.raises(ValueError, match="names no file"):
        open_storage("journal://")


def test_unwritable_journal_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StorageUnavailable, match="cannot open journal storage"):
        open_storage(f"journal:///{blocker}/inside/study.log")


# -- gRPC storage proxy -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_through_the_grpc_proxy_finish_exactly_n_trials(tmp_path, tiny_dataset, tiny_data_config, monkeypatch):
    monkeypatch.setenv("HPO_LOCK_URL", f"file:///{tmp_path}/admission")  # a proxy has no lock: a shared file
    with grpc_proxy(f"sqlite:///{tmp_path}/behind-the-proxy.db") as url:
        path = tiny_study(tmp_path, tiny_data_config, name="proxied")
        result = launch(path, workers=2, overrides={"n_trials": 5}, storage_url=url, poll_seconds=0.5)
        assert result.ok, result.exit_codes
        trials = trials_of(url, "proxied")
        assert count(trials, *FINISHED) == 5 and len(trials) == 5
        # every trial beat through the proxy
        assert all(HEARTBEAT_ATTR in t.system_attrs for t in trials)
    # and it all landed in the database behind the proxy
    direct = optuna.load_study(study_name="proxied", storage=open_storage(f"sqlite:///{tmp_path}/behind-the-proxy.db",
                                                                          heartbeat_interval=None))
    assert count(direct.get_trials(), *FINISHED) == 5
    assert (tmp_path / "admission.proxied.lock").exists()


@pytest.mark.postgres
@pytest.mark.slow
def test_grpc_proxy_over_postgresql_with_the_advisory_lock(tmp_path, tiny_dataset, tiny_data_config, postgres_url, unique_name, monkeypatch):
    monkeypatch.setenv("HPO_LOCK_URL", postgres_url)
    assert AdmissionLock("grpc://127.0.0.1:1", unique_name).kind == "postgresql"
    with grpc_proxy(postgres_url) as url:
        path = tiny_study(tmp_path, tiny_data_config, name=unique_name)
        result = launch(path, workers=2, overrides={"n_trials": 4}, storage_url=url, poll_seconds=0.5)
        assert result.ok, result.exit_codes
    trials = trials_of(postgres_url, unique_name)
    assert count(trials, *FINISHED) == 4 and len(trials) == 4


def test_grpc_without_a_lock_warns_that_counts_may_overshoot(caplog):
    with caplog.at_level("WARNING"):
        lock = AdmissionLock("grpc://127.0.0.1:1", "no-lock")
    assert lock.kind == "none"
    assert "HPO_LOCK_URL" in caplog.text


@pytest.mark.slow
def test_unreachable_grpc_proxy_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(storage_module, "GRPC_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(StorageUnavailable, match="no gRPC storage proxy answered") as error:
        open_storage(f"grpc://127.0.0.1:{_free_port()}")
    assert "\n" not in str(error.value)


def test_grpc_url_without_a_port_is_a_clear_error():
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        open_storage("grpc://somewhere")


@pytest.mark.slow
def test_proxy_refuses_a_taken_port(tmp_path):
    with grpc_proxy(f"sqlite:///{tmp_path}/p.db") as url:
        port = url.rsplit(":", 1)[1]
        second = subprocess.run(HPO + ["proxy", "--storage", f"sqlite:///{tmp_path}/p.db", "--port", port],
                                capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert "cannot listen" in second.stderr and "Address already in use" in second.stderr
