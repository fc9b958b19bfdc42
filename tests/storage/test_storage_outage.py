"""Storage outages against a real (private) PostgreSQL that the test stops and starts mid-study.

Real ``hpo run`` processes with real worker processes: a restart shorter than the outage window
costs nothing (exact trial count, no failed trial, exit 0); a longer one stops every process with one
line, leaves no worker behind and no corrupted store, and the study resumes to its exact count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.run import launch, run_worker
from hpo.storage import EXIT_CODE, StorageOutage, StorageRetry, is_storage_error, open_storage
from hpo.study import load_study_file
from tests.run.test_workers import FINISHED, _private_run_directory, count, sqlite_url, tiny_study, trials_of  # noqa: F401

WORKERS = 2


@contextmanager
def hpo_run(path: Path, url: str, log: Path) -> Iterator[subprocess.Popen]:
    """``hpo run FILE --workers 2`` as a user starts it, output (both streams) into ``log``; killed if
    still running when the block ends."""
    command = [sys.executable, "-m", "hpo.cli", "run", str(path), "--workers", str(WORKERS), "--storage", url]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_trials(
    url: str, name: str, at_least: int, process: subprocess.Popen, states: tuple[TrialState, ...] = FINISHED,
    timeout: float = 180,
) -> None:
    """Until the study has ``at_least`` trials in ``states``, while ``hpo run`` is still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "hpo run ended early"
        try:
            if count(trials_of(url, name), *states) >= at_least:
                return
        except KeyError:  # the study does not exist yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"no {at_least} trial(s) in {[s.name for s in states]} within {timeout} s")


def worker_pids(launcher_pid: int) -> list[int]:
    """The ``hpo worker`` child processes of ``launcher_pid`` (not the session's browser or servers)."""
    children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    return [int(pid) for pid in children if b"worker" in _cmdline(int(pid))]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it ended meanwhile
        return b""


def finish(process: subprocess.Popen, timeout: float) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.mark.slow
def test_a_restart_shorter_than_the_window_costs_no_trial(tmp_path, tiny_dataset, tiny_data_config, private_postgres, unique_name):
    url = private_postgres.url
    path = tiny_study(
        tmp_path, tiny_data_config, name=unique_name, n_trials=4,
        **{"fixed.max_epochs": 25, "fixed.early_stopping_patience": 25, "storage": {"outage_window_s": 30}},
    )
    log = tmp_path / "run.log"
    with hpo_run(path, url, log) as run:
        wait_for_trials(url, unique_name, 1, run)
        private_postgres.stop()  # connections terminated, new ones refused
        time.sleep(4)
        private_postgres.start()
        code = finish(run, timeout=240)
    output = log.read_text()
    assert code == 0, output[-4000:]
    assert "Traceback" not in output and "invalid data in the commit" not in output, output[-4000:]
    assert "Caught an error from sqlalchemy" not in output  # Optuna's multi-line SQL warning is kept out
    assert "unreachable" in output and "retrying for up to 30 s" in output, output[-4000:]
    assert "reachable again after" in output, output[-4000:]
    trials = trials_of(url, unique_name)
    assert count(trials, *FINISHED) == 4 and len(trials) == 4, [(t.number, t.state) for t in trials]
    assert count(trials, TrialState.FAIL) == 0  # nothing failed, nothing re-run
    assert "reachable again after 0.0 s" not in output  # only a call that reached the storage ends an outage


@pytest.mark.slow
def test_an_outage_longer_than_the_window_stops_cleanly_and_the_study_resumes(
    tmp_path, tiny_dataset, tiny_data_config, private_postgres, unique_name, monkeypatch
):
    url = private_postgres.url
    n_trials = 4
    path = tiny_study(
        tmp_path, tiny_data_config, name=unique_name, n_trials=n_trials,
        **{
            "fixed.max_epochs": 50, "fixed.early_stopping_patience": 50,
            "storage": {"outage_window_s": 6}, "heartbeat": {"interval": 1, "grace_period": 3},
        },
    )
    log = tmp_path / "run.log"
    with hpo_run(path, url, log) as run:
        try:
            wait_for_trials(url, unique_name, 1, run)
            pids = worker_pids(run.pid)
            assert len(pids) == WORKERS
            private_postgres.stop()
            started = time.monotonic()
            code = finish(run, timeout=120)
            down_for = time.monotonic() - started
        finally:
            private_postgres.start()
    output = log.read_text()
    assert code == EXIT_CODE, output[-4000:]
    assert down_for >= 6  # they waited the window out first
    assert "Traceback" not in output, output[-4000:]
    errors = [line for line in output.splitlines() if ": error: " in line]
    assert len(errors) == WORKERS + 1, errors  # one line per worker, one from hpo run
    assert sum(line.startswith("hpo worker: error: storage ") and "outage window" in line for line in errors) == WORKERS
    assert any(line.startswith("hpo run: error: workers stopped") for line in errors), errors
    assert "not finished (storage " in output and "done in " not in output and "export: " not in output  # no false end
    for pid in pids:  # hpo run reaped its workers before it exited: none is left behind
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived hpo run"

    # The store is intact. Trials that were running stay RUNNING until a worker fails them: by their heartbeat,
    # or, for one whose worker created it but never got to beat (the outage hit between ask and heartbeat),
    # after the grace period on the resumed worker's own clock. No `hpo abandon` is needed.
    before = trials_of(url, unique_name)
    assert 1 <= count(before, *FINISHED) < n_trials
    stranded = [t.number for t in before if t.state == TrialState.RUNNING]
    monkeypatch.setenv("HPO_STORAGE_OUTAGE_S", "30")
    resumed = load_study_file(path, {"fixed.max_epochs": 8, "timeout": 240})  # short trials; never wait forever
    report = run_worker(resumed, storage_url=url, worker_index=5, num_threads=1)
    after = {t.number: t for t in trials_of(url, unique_name)}
    assert count(after.values(), *FINISHED) == n_trials, (report, [(t.number, t.state) for t in after.values()])
    assert count(after.values(), TrialState.RUNNING, TrialState.WAITING) == 0
    for number in stranded:  # failed as their dead worker's (not counted) and re-run with the same configuration
        assert after[number].state == TrialState.FAIL
        assert after[number].user_attrs["fail_reason"] in ("stale", "no heartbeat")
        assert any(t.system_attrs.get("failed_trial") == number and t.state in FINISHED for t in after.values())


@pytest.mark.slow
def test_storage_retry_waits_out_a_short_outage_and_gives_up_after_the_window(private_postgres, caplog):
    """The retry on its own, against the real server: reconnects after a restart, then stops past the window."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(private_postgres.url, pool_pre_ping=True)

    def query() -> int:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text("SELECT 1")).scalar()

    retry = StorageRetry(20, where="storage test", label="t")
    try:
        assert retry.call(query) == 1
        private_postgres.stop()
        with pytest.raises(sqlalchemy.exc.OperationalError) as refused:
            query()
        assert is_storage_error(refused.value) and not is_storage_error(ValueError("bad data"))
        restart_after = time.monotonic() + 2

        def query_restarting_the_server():
            if time.monotonic() >= restart_after:
                private_postgres.start()
            return query()

        with caplog.at_level("WARNING", logger="hpo.storage"):
            assert retry.call(query_restarting_the_server) == 1
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2 and "t: storage test unreachable" in messages[0] and "reachable again" in messages[1]

        private_postgres.stop()
        short = StorageRetry(1.5, where="storage test")
        started = time.monotonic()
        with pytest.raises(StorageOutage, match=r"unreachable for \d+ s, longer than the outage window"):
            short.call(query)
        assert 1.5 <= time.monotonic() - started < 5
    finally:
        private_postgres.start()
        engine.dispose()


@pytest.mark.slow
def test_a_launcher_that_fails_itself_interrupts_and_reaps_its_workers(tmp_path, tiny_dataset, tiny_data_config):
    """Any error of ``hpo run`` itself (here: in its progress callback) stops its workers; none is orphaned."""
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="orphans", n_trials=6,
                      **{"fixed.max_epochs": 200, "fixed.early_stopping_patience": 200})
    seen: dict[str, list[int]] = {}

    def progress_that_breaks(progress) -> None:
        if progress.counts.running >= WORKERS:  # both workers are inside a trial
            seen["pids"] = worker_pids(os.getpid())
            raise RuntimeError("the launcher's own bug")

    with pytest.raises(RuntimeError, match="own bug"):
        launch(path, workers=WORKERS, storage_url=url, on_progress=progress_that_breaks, poll_seconds=0.3)
    assert len(seen["pids"]) == WORKERS
    for pid in seen["pids"]:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} outlived the launcher"
    trials = trials_of(url, "orphans")
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert interrupted and all(t.user_attrs["fail_reason"] == "interrupted" for t in interrupted)
    assert count(trials, TrialState.RUNNING) == 0  # each worker failed its trial before it exited...
    requeued = {t.system_attrs.get("failed_trial") for t in trials if t.state == TrialState.WAITING}
    assert requeued == {t.number for t in interrupted}  # ...and queued its configuration again


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning")
def test_a_trial_failed_as_stale_meanwhile_is_dropped_without_a_crash(tmp_path, caplog):
    """After an outage longer than grace_period other workers may fail this worker's trial: it goes on."""

    from hpo.run._worker import _ask, _run_trial
    from hpo.storage import set_user_attrs

    storage = open_storage(sqlite_url(tmp_path), heartbeat_interval=1, grace_period=3)
    study = optuna.create_study(study_name="stale", storage=storage)

    def failed_by_others_then_returns(trial):
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # what another worker's stale check does
        return 0.5

    def failed_by_others_then_writes(trial):
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        set_user_attrs(trial, {"steps_run": 3})  # a write of the objective finds the trial finished
        return 0.5

    with caplog.at_level("WARNING", logger="hpo.worker"):
        for objective in (failed_by_others_then_returns, failed_by_others_then_writes):
            assert _run_trial(study, _ask(study), objective, storage, "worker 0", "value") is TrialState.FAIL
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.FAIL]  # left as the others set it
    assert sum("was failed meanwhile as stale" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.slow
def test_sigterm_to_hpo_run_stops_its_workers_first(tmp_path, tiny_dataset, tiny_data_config):
    """``kill``, ``timeout`` or SLURM end ``hpo run`` with SIGTERM: its workers fail and re-queue their trials and exit."""
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="terminated", n_trials=6,
                      **{"fixed.max_epochs": 200, "fixed.early_stopping_patience": 200})
    log = tmp_path / "run.log"
    with hpo_run(path, url, log) as run:
        wait_for_trials(url, "terminated", WORKERS, run, states=(TrialState.RUNNING,))
        pids = worker_pids(run.pid)
        run.terminate()
        code = finish(run, timeout=60)
    output = log.read_text()
    assert code == 143 and "Traceback" not in output, output[-3000:]
    assert len(pids) == WORKERS and not any(Path(f"/proc/{pid}").exists() for pid in pids)
    trials = trials_of(url, "terminated")
    assert count(trials, TrialState.RUNNING) == 0
    assert all(t.user_attrs.get("fail_reason") == "interrupted" for t in trials if t.state == TrialState.FAIL)
    assert count(trials, TrialState.WAITING) == count(trials, TrialState.FAIL) >= 1  # each re-queued


def test_retry_backs_off_exponentially_up_to_the_window_and_lets_other_errors_through():
    import sqlalchemy

    now, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    retry = StorageRetry(20, clock=lambda: now[0], sleep=sleep)
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    wrapped = optuna.exceptions.StorageInternalError("invalid data in the commit")  # how Optuna re-raises it
    wrapped.__cause__ = lost

    def unreachable():
        raise wrapped

    with pytest.raises(StorageOutage, match=r"unreachable for 20 s, .*= 20\): connection refused$"):
        retry.call(unreachable)
    assert sleeps == [0.5, 1, 2, 4, 5, 5, 2.5]  # doubling, capped at 5 s, the last one ends at the window

    def bad_data():
        raise ValueError("not an outage")

    sleeps.clear()
    with pytest.raises(ValueError):
        StorageRetry(20, sleep=sleep).call(bad_data)
    assert sleeps == []  # no retry: only a lost storage is waited for
    handled = ValueError("raised while handling a lost connection")
    handled.__context__ = lost
    assert not is_storage_error(handled)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning")
@pytest.mark.slow
def test_reports_and_the_tell_that_meet_a_restart_reach_the_database_once_it_is_back(private_postgres, unique_name):
    import threading

    from hpo.run._worker import _ask, _run_trial
    from hpo.storage import BufferedReports

    storage = open_storage(private_postgres.url, heartbeat_interval=1, grace_period=30)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    retry = StorageRetry(30, where="storage test")
    restarts: list[threading.Timer] = []

    def restart_in_2_s() -> None:
        private_postgres.stop()  # the next writes fail
        restarts.append(threading.Timer(2.0, private_postgres.start))
        restarts[-1].start()

    def reports_meet_the_outage(trial):
        reports = BufferedReports(trial, flush_every_s=0, retry=retry)  # every report is a write
        reports.report(0.1, 0)
        restart_in_2_s()
        reports.report(0.2, 1)  # kept for the next flush while the trial trains on
        assert retry.in_outage
        retry.call(reports.flush)  # what the objective does before the trial is told
        return 0.7

    def tell_meets_the_outage(trial):
        restart_in_2_s()
        return 0.9

    try:
        for objective in (reports_meet_the_outage, tell_meets_the_outage):
            assert _run_trial(study, _ask(study), objective, storage, "worker 0", "value", retry=retry) is TrialState.COMPLETE
    finally:
        for timer in restarts:
            timer.join()
        private_postgres.start()
    assert not retry.in_outage
    first, second = optuna.load_study(study_name=unique_name, storage=private_postgres.url).get_trials()
    assert first.state == TrialState.COMPLETE and first.value == 0.7
    assert first.intermediate_values == {0: 0.1, 1: 0.2}  # no report lost
    assert second.state == TrialState.COMPLETE and second.value == 0.9  # told once the database was back
