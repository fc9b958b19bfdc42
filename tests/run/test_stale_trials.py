"""Trials of dead workers on a real SQLite study: failed with a reason, re-run, and not counted as failures."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from hpo.results import Counts
from hpo.run import AdmissionLock, TrialBudget, trial_loop
from hpo.storage import NEVER_BEAT, STALE, SilentTrials, fail_stale_trials, open_storage

pytestmark = [
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning"),
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


def _held_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """A trial another worker asked for and chose parameters for, then died (RUNNING from now on)."""
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    return study.trials[-1]


def _run(study, storage, url, *, n_trials: int, max_failed: int, caplog) -> tuple:
    lock = AdmissionLock(url, study.study_name)
    started = time.monotonic()
    try:
        with caplog.at_level("INFO", logger="hpo.worker"):
            report = trial_loop(
                study, lambda trial: trial.suggest_float("x", 0.0, 1.0), storage=storage, lock=lock, label="worker 3",
                budget=TrialBudget(n_trials, max_failed, timeout=60, started=started), free_memory=False,
            )
    finally:
        lock.close()
    return report, time.monotonic() - started


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path) -> str:
    """A real SQLite file, or the real PostgreSQL (skipped where none is reachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_trial_that_never_beat_is_failed_after_the_grace_period_and_rerun_without_abandon(
    storage_url, unique_name, caplog
):
    url = storage_url
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name=unique_name, storage=storage)
    held = _held_trial(study)  # created as the database went down: no heartbeat was ever recorded for it
    assert optuna.storages.fail_stale_trials(study) is None and study.trials[0].state == TrialState.RUNNING  # Optuna: never

    report, seconds = _run(study, storage, url, n_trials=1, max_failed=1, caplog=caplog)

    trials = study.get_trials()
    first, retry = trials[0], trials[1]
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == NEVER_BEAT
    assert retry.state == TrialState.COMPLETE and retry.params == held.params  # the same configuration, re-run
    assert retry.system_attrs["failed_trial"] == 0 and len(trials) == 2
    assert report.ran == 1 and not report.stopped_on_failures  # not counted toward max_failed_trials=1
    assert Counts.of(study).failed == 0
    assert 2.0 < seconds < 30  # after the grace period on this worker's clock, not never
    messages = [r.getMessage() for r in caplog.records if r.name == "hpo.worker"]
    waits = [m for m in messages if "waiting for #0" in m]
    assert waits and "re-run if silent 2 s" in waits[0]  # and it was
    assert any("failed #0 of dead worker(s)" in m and "queued again" in m for m in messages)


def test_a_stale_trial_carries_its_reason_and_does_not_count_as_a_failure(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="stale", storage=storage)
    held = _held_trial(study)
    storage.record_heartbeat(held._trial_id)  # it beat once, then its worker was killed
    time.sleep(2.5)  # past the grace period of that beat (on the database's clock, as Optuna judges)

    report, _seconds = _run(study, storage, url, n_trials=2, max_failed=1, caplog=caplog)

    first = study.get_trials()[0]
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == STALE
    assert not report.stopped_on_failures and Counts.of(study).failed == 0 and Counts.of(study).complete == 2
    assert any(t.system_attrs.get("failed_trial") == 0 and t.state == TrialState.COMPLETE for t in study.get_trials())


def test_a_configuration_that_fails_still_counts(tmp_path):
    """The other side: a trial failed by its objective counts toward max_failed_trials as before."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="crash", storage=storage)
    lock = AdmissionLock(url, "crash")

    def crash(trial):
        raise RuntimeError("boom")

    report = trial_loop(study, crash, storage=storage, lock=lock, budget=TrialBudget(3, 2), free_memory=False)
    lock.close()
    assert report.stopped_on_failures and Counts.of(study).failed == 2


def test_the_silent_watch_starts_again_after_an_outage_this_worker_saw(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="watch", storage=storage)
    _held_trial(study)
    now, outages = [100.0], [0]
    silent = SilentTrials(2, outages=lambda: outages[0], clock=lambda: now[0])
    assert list(silent.silent_for(study).values()) == [0.0]
    now[0] += 1.5
    outages[0] += 1  # the storage was down: its worker may have been unable to beat
    assert list(silent.silent_for(study).values()) == [0.0]
    now[0] += 2.5
    assert silent.overdue(study) == [study.trials[0]._trial_id]
    assert fail_stale_trials(study, silent) == [0]
    assert fail_stale_trials(study, silent) == []  # once
