"""Workers against real SQLite and PostgreSQL: exact trial counts, SIGKILL recovery, pruning, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import tomli_w
import tomllib
from optuna.trial import TrialState

from hpo.run import launch, run_worker
from hpo.run._launcher import worker_environment
from hpo.run._worker import TRIAL_LINE_WIDTH
from hpo.storage import open_storage
from hpo.study import apply_overrides, load_study_file

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture(autouse=True, scope="module")
def _private_run_directory(tmp_path_factory):
    """Artifacts, locks and default stores of these tests go to a temporary run directory (workers inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPO_HOME", str(tmp_path_factory.mktemp("hpo-home")))
        yield


def tiny_study(tmp_path: Path, data_config: Any, name: str = "tiny", space: dict | None = None, **changes: Any) -> Path:
    """A small classifier study on the tiny data set, written to ``tmp_path``.

    ``changes`` are dotted overrides (tables merge); ``space`` replaces the search space.
    """
    content = {
        "name": name,
        "model": "classifier",
        "metric": "val_balanced_accuracy",
        "direction": "maximize",
        "n_trials": 4,
        "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": str(data_config.cache_dir)},
        "fixed": {"max_epochs": 4, "hidden_dim": 32, "latent_dim": 16, "batch_size": 32},
        "space": {
            "lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.4},
        },
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
    }
    content = apply_overrides(content, changes)
    if space is not None:
        content["space"] = space
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(content))
    return path


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None)).get_trials()


def count(trials, *states) -> int:
    return sum(t.state in states for t in trials)


@pytest.mark.slow
def test_three_worker_processes_finish_exactly_n_trials_on_sqlite(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="exact")
    result = launch(path, workers=3, overrides={"n_trials": 7}, storage_url=url, poll_seconds=0.5)
    assert result.ok, result.exit_codes
    trials = trials_of(url, "exact")
    assert count(trials, *FINISHED) == 7
    assert len(trials) == 7  # nothing left running or waiting, no extra trial started
    assert len({t.user_attrs["worker"] for t in trials}) >= 2  # the work really was shared
    assert result.progress.counts.finished == 7 and result.progress.best_value is not None

    # Optuna's own CLI reads what this project wrote.
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "optuna"), "trials", "--study-name", "exact", "--storage", url, "-f", "json"],
        capture_output=True, text=True, check=True,
    )
    assert len(json.loads(listed.stdout)) == 7


@pytest.mark.postgres
@pytest.mark.slow
def test_two_worker_processes_finish_exactly_n_trials_on_postgresql(tmp_path, tiny_dataset, tiny_data_config, postgres_url, unique_name):
    path = tiny_study(tmp_path, tiny_data_config, name=unique_name)
    result = launch(path, workers=2, overrides={"n_trials": 5}, storage_url=postgres_url, poll_seconds=0.5)
    assert result.ok, result.exit_codes
    trials = trials_of(postgres_url, unique_name)
    assert count(trials, *FINISHED) == 5 and len(trials) == 5
    # another worker joining a finished study starts nothing: the budget is study-wide
    late = run_worker(load_study_file(path, {"n_trials": 5}), storage_url=postgres_url, worker_index=7, num_threads=1)
    assert late.ran == 0 and "5 of 5 trials finished" in late.stop_reason
    assert len(trials_of(postgres_url, unique_name)) == 5


@pytest.mark.slow
def test_sigkilled_worker_trial_is_failed_retried_and_the_study_completes(tmp_path, tiny_dataset, tiny_data_config):
    kill_one_worker_and_finish(sqlite_url(tmp_path), tmp_path, tiny_data_config)


def kill_one_worker_and_finish(url: str, tmp_path: Path, data_config: Any) -> None:
    """SIGKILL a worker mid-trial; a second worker must fail that trial by heartbeat, re-run it and finish."""
    # slow trials (~3 s) so that the kill lands mid-trial; short heartbeats so recovery takes seconds
    path = tiny_study(
        tmp_path, data_config, name="killed", n_trials=3,
        **{"fixed.max_epochs": 200, "fixed.early_stopping_patience": 200, "heartbeat": {"interval": 1, "grace_period": 3}},
    )
    command = [sys.executable, "-m", "hpo.cli", "worker", str(path), "--storage", url]
    victim = subprocess.Popen(command + ["--worker-index", "0"], env=worker_environment(0, 2, [], 2))
    try:
        running = _wait_for_running_trial(url, "killed", victim.pid, timeout=90)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        survivor = subprocess.run(command + ["--worker-index", "1"], env=worker_environment(1, 2, [], 2), timeout=180)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert survivor.returncode == 0
    trials = {t.number: t for t in trials_of(url, "killed")}
    assert trials[running].state == TrialState.FAIL  # the killed worker's trial, failed by heartbeat
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == running]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert retries[0].params == trials[running].params  # the same configuration was re-run
    assert count(trials.values(), *FINISHED) == 3
    assert count(trials.values(), TrialState.RUNNING, TrialState.WAITING) == 0


def _wait_for_running_trial(url: str, name: str, pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for trial in trials_of(url, name):
                if trial.state == TrialState.RUNNING and trial.user_attrs.get("worker", "").endswith(f":{pid}"):
                    time.sleep(0.5)  # well inside the trial
                    return trial.number
        except KeyError:  # study not created yet
            pass
        time.sleep(0.2)
    raise AssertionError("the worker never started a trial")


@pytest.mark.slow
def test_pruner_prunes_with_a_reason(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    path = tiny_study(
        tmp_path, tiny_data_config, name="pruned", n_trials=8,
        **{
            "fixed.max_epochs": 6,
            "space.lr.low": 1e-6,
            "pruner": {"name": "percentile", "percentile": 75.0, "n_startup_trials": 2, "n_warmup_steps": 1},
        },
    )
    report = run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    trials = trials_of(url, "pruned")
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert report.pruned == len(pruned) >= 1 and count(trials, *FINISHED) == 8
    for trial in pruned:
        assert "pruned by PercentilePruner at step" in trial.user_attrs["prune_reason"]
        assert trial.user_attrs["steps_run"] < 6  # it stopped early
        assert len(trial.intermediate_values) == trial.user_attrs["steps_run"]


def test_nan_loss_prunes_and_out_of_memory_fails_while_the_worker_goes_on(tmp_path, tiny_dataset, tiny_data_config, monkeypatch):
    import models.registry
    from models.errors import DeviceOutOfMemory

    url = sqlite_url(tmp_path)
    path = tiny_study(
        tmp_path, tiny_data_config, name="faults", n_trials=3,
        space={"lr": {"type": "categorical", "choices": [1e6, 1e-2]}},
        **{"fixed.grad_clip": 0.0, "fixed.optimizer": "sgd", "sampler": {"name": "random", "seed": 1}},
    )
    real_build = models.registry.build_model
    calls = {"n": 0}

    def build_that_runs_out_of_memory_once(name, params, **options):
        calls["n"] += 1
        model = real_build(name, params, **options)
        if calls["n"] == 1:
            def fit(*args, **kwargs):
                raise DeviceOutOfMemory("out of memory on cuda:0 (batch_size=32) [simulated]")
            model.fit = fit
        return model

    monkeypatch.setattr(models.registry, "build_model", build_that_runs_out_of_memory_once)
    report = run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    trials = trials_of(url, "faults")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "out of memory" in failed[0].user_attrs["fail_reason"]
    assert count(trials, *FINISHED) == 3  # the worker went on; the failure did not count
    diverged = [t for t in trials if t.params.get("lr") == 1e6 and t.state != TrialState.FAIL]
    assert diverged, "the seeded sampler should have tried the huge learning rate after the OOM trial"
    for trial in diverged:
        assert trial.state == TrialState.PRUNED
        assert "training diverged" in trial.user_attrs["prune_reason"]
    assert report.failed == 1


def test_failures_stop_at_the_cap_instead_of_looping(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    # a pretrained encoder that is not there: valid as a file, but every trial fails when it trains
    path = tiny_study(tmp_path, tiny_data_config, name="capped", n_trials=5, max_failed_trials=3,
                      **{"fixed.encoder_from": str(tmp_path / "no-such-autoencoder")})
    report = run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    assert report.failed == 3 and "max_failed_trials=3" in report.stop_reason
    assert count(trials_of(url, "capped"), TrialState.FAIL) == 3


def _tiny_version(path: Path, data_config: Any, tmp_path: Path) -> Path:
    """The shipped study file on tiny data with few epochs, as a user would with --set."""
    content = tomllib.loads(path.read_text())
    content["data"] = {"preset": "tiny", "cache_dir": str(data_config.cache_dir)}
    content["n_trials"] = 2
    fixed = content.setdefault("fixed", {})
    if "max_epochs" in fixed:
        fixed["max_epochs"] = 3
    if "ae_max_epochs" in fixed:
        fixed["ae_max_epochs"] = 2
    if content["model"] == "random_forest":
        content["space"]["n_estimators"]["high"] = 150
    out = tmp_path / path.name
    out.write_text(tomli_w.dumps(content))
    return out


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
@pytest.mark.slow
def test_every_shipped_study_runs_two_trials_on_tiny_data(tmp_path, tiny_dataset, tiny_data_config, path):
    url = sqlite_url(tmp_path)
    spec = load_study_file(_tiny_version(path, tiny_data_config, tmp_path))
    run_worker(spec, storage_url=url, worker_index=0, num_threads=1)
    trials = trials_of(url, spec.name)
    assert count(trials, *FINISHED) == 2, [(t.state, t.user_attrs.get("fail_reason")) for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for trial in complete:
        # a folds study's value is its CV mean; the metric attribute is then the validation split's score
        ranked_by = "cv_mean" if "fold_scores" in trial.user_attrs else spec.metric
        assert trial.user_attrs[ranked_by] == pytest.approx(trial.value)
        assert spec.metric in trial.user_attrs and trial.user_attrs["steps_run"] >= 1 and trial.user_attrs["train_seconds"] > 0
        assert "device" in trial.user_attrs and "n_parameters" in trial.user_attrs
    study = optuna.load_study(study_name=spec.name, storage=url)
    assert study.user_attrs["model"] == spec.model and study.user_attrs["data_fingerprint"] == tiny_dataset.fingerprint
    assert study.user_attrs["study_file_text"] and study.user_attrs["versions"]["optuna"] == optuna.__version__


def test_worker_environment_gives_one_thread_each_and_pins_gpus_round_robin(monkeypatch):
    monkeypatch.delenv("HPO_NUM_THREADS", raising=False)
    env = worker_environment(3, 4, ["0", "1"], 16)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"  # benchmarks/threads.py
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert worker_environment(0, 8, [], 2)["OMP_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in worker_environment(0, 2, [], 2) or os.environ.get("CUDA_VISIBLE_DEVICES")


def test_budget_semantics():
    from hpo.results import Counts
    from hpo.run import TrialBudget
    from hpo.run._admission import Decision

    budget = TrialBudget(n_trials=5, max_failed=3, timeout=None, started=time.monotonic())
    assert budget.decide(Counts(complete=2, pruned=1, running=1))[0] is Decision.RUN
    # running trials hold the rest of the budget: wait (one may fail or go stale), do not leave
    assert budget.decide(Counts(complete=3, running=2))[0] is Decision.WAIT
    # failed trials do not count toward n_trials...
    assert budget.decide(Counts(complete=4, failed=2))[0] is Decision.RUN
    # ...but end the study at the cap
    assert budget.decide(Counts(complete=1, failed=3))[0] is Decision.DONE
    assert budget.decide(Counts(complete=3, pruned=2, running=1))[0] is Decision.DONE
    # only the cap (not a spent budget) is a stop on failures, which `hpo run` / `hpo worker` exit 1 for
    assert budget.stopped_on_failures(Counts(complete=1, failed=3))
    assert not budget.stopped_on_failures(Counts(complete=5, failed=3))
    assert not budget.stopped_on_failures(Counts(complete=1, failed=2))
    expired = TrialBudget(n_trials=None, max_failed=3, timeout=1.0, started=time.monotonic() - 2)
    assert expired.decide(Counts())[0] is Decision.DONE
    assert TrialBudget(None, 3, None, time.monotonic()).decide(Counts(complete=10**6))[0] is Decision.RUN


@pytest.mark.slow
def test_timeout_stops_starting_trials(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="timed", timeout=2.0, **{"fixed.max_epochs": 2})
    spec = load_study_file(path, {"n_trials": 10_000})
    started = time.monotonic()
    report = run_worker(spec, storage_url=url, worker_index=0, num_threads=1)
    assert "timeout of 2 s reached" in report.stop_reason
    assert 1 <= report.ran < 10_000 and time.monotonic() - started < 60


def test_interrupted_trial_is_requeued_and_not_counted_as_a_failure(tmp_path):
    from hpo.results import Counts
    from hpo.run._worker import _ask, _run_trial

    storage = open_storage(sqlite_url(tmp_path), heartbeat_interval=1, grace_period=3)
    study = optuna.create_study(study_name="interrupted", storage=storage)
    trial = _ask(study)

    def objective(trial):
        trial.suggest_float("x", 0, 1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run_trial(study, trial, objective, storage, "worker 0", "value")
    first, again = study.get_trials()
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"] == "interrupted"
    assert again.state == TrialState.WAITING and again.params == first.params
    assert again.system_attrs["failed_trial"] == first.number
    assert Counts.of(study).failed == 0  # Ctrl-C says nothing about the configuration


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used:UserWarning")
@pytest.mark.slow
def test_a_waiting_worker_says_what_it_waits_for(tmp_path, caplog):
    """Running trials hold the budget: the worker logs which, and how they get freed, instead of waiting silently."""
    from hpo.run import AdmissionLock, TrialBudget, trial_loop

    url = sqlite_url(tmp_path)
    storage = open_storage(url, heartbeat_interval=1, grace_period=5)
    study = optuna.create_study(storage=storage, study_name="waiting")
    held = study.ask()  # another worker's trial, still running
    storage.record_heartbeat(held._trial_id)
    lock = AdmissionLock(url, "waiting")
    with caplog.at_level("INFO", logger="hpo.worker"):
        report = trial_loop(study, lambda trial: 0.0, storage=storage, lock=lock,
                            budget=TrialBudget(1, 3, timeout=2.5, started=time.monotonic()), label="worker 9")
    lock.close()
    assert report.ran == 0 and "timeout" in report.stop_reason
    waits = [r.getMessage() for r in caplog.records if r.name == "hpo.worker" and "waiting" in r.getMessage()]
    assert len(waits) == 1  # at once, then once a minute
    assert waits[0].startswith("worker 9: waiting for #0 (")  # which running trial holds the budget
    assert "re-run if silent 5 s" in waits[0]  # how a dead worker's trial gets freed
    assert "`hpo abandon waiting N`" in waits[0]  # what to do about a trial that never beat
    assert len(waits[0]) <= TRIAL_LINE_WIDTH  # as short as a trial line


def test_the_waiting_line_names_many_trials_compactly():
    from hpo.run._worker import trial_numbers, wait_message

    assert trial_numbers([15, 14], 40) == "#14, #15"
    assert trial_numbers([3, 4, 5, 6, 9, 11, 12], 40) == "#3-#6, #9, #11, #12"
    assert trial_numbers(list(range(0, 40, 2)), 20) == "#0, #2, #4 +17 more"  # 20 trials, what fits 20 characters
    many = wait_message("worker 12", list(range(0, 64, 2)), "classifier-tpe", 30)
    assert len(many) <= TRIAL_LINE_WIDTH and "+" in many and many.endswith("`hpo abandon classifier-tpe N`)")
    bare = wait_message("worker 1", [7], "s", None)
    assert bare == "worker 1: waiting for #7 (no heartbeats: if stuck, `hpo abandon s N`)"


def test_sampler_seed_rule():
    from hpo.samplers import sampler_seed

    assert sampler_seed(7, 0) == 7 and sampler_seed(7, 2) == 2007  # a fresh study: seed + 1000 x worker index
    assert sampler_seed(7, 0, trials_before=2) == 7 + 2 * 1_000_003  # a resumed one: shifted by the trials it holds
    assert sampler_seed(None, 3, 5) is None
    assert 0 <= sampler_seed(2**32 - 1, 5, 10**6) < 2**32  # numpy's seed range, however large the study
    seeds = {sampler_seed(0, k, n) for k in range(50) for n in range(50)}
    assert len(seeds) == 50 * 50  # no worker of one run shares a seed with a worker of another


def _fast_tpe_study(tmp_path: Path, data_config: Any, name: str) -> Path:
    """A logistic-regression study (fractions of a second per trial) with a seeded TPE sampler."""
    path = tiny_study(
        tmp_path, data_config, name=name, model="logistic_regression",
        space={"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True},
               "l1_ratio": {"type": "float", "low": 0.0, "high": 1.0}},
        sampler={"name": "tpe", "seed": 3, "n_startup_trials": 10}, n_trials=2,
    )
    content = tomllib.loads(path.read_text())
    content["fixed"] = {"max_iter": 50}
    path.write_text(tomli_w.dumps(content))
    return path


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.slow
def test_a_resumed_study_proposes_new_configurations_and_a_fresh_one_reproduces(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    path = _fast_tpe_study(tmp_path, tiny_data_config, "resumed")
    run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    # resumed for 2 more in a new worker process, as `hpo worker` (the launcher's child) runs it
    subprocess.run([sys.executable, "-m", "hpo.cli", "worker", str(path), "--storage", url, "--n-trials", "4",
                    "--worker-index", "0", "--threads", "1"], check=True, timeout=300)
    trials = trials_of(url, "resumed")
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert count(trials, TrialState.COMPLETE) == 4 and len(set(points)) == 4, points
    # a fresh study with the same seed proposes the first run's configurations again
    fresh = load_study_file(path)
    run_worker(fresh, storage_url=url, study_name="fresh", worker_index=0, num_threads=1)
    assert [t.params for t in trials_of(url, "fresh")] == [t.params for t in trials[:2]]


@pytest.mark.slow
def test_hpo_run_and_its_worker_exit_non_zero_saying_why_when_the_study_stops_on_failures(tmp_path, tiny_dataset, tiny_data_config, capfd):
    from hpo.cli import main

    # a pretrained encoder that is not there: valid as a file, but every trial fails when it trains
    path = tiny_study(tmp_path, tiny_data_config, name="gives-up", n_trials=5, max_failed_trials=2,
                      **{"fixed.encoder_from": str(tmp_path / "no-such-autoencoder")})
    assert main(["run", str(path), "--storage", sqlite_url(tmp_path), "--quiet"]) == 1
    err = capfd.readouterr().err
    expected = ("study 'gives-up' stopped: 2 failed trials reached max_failed_trials=2; latest: trial 1: "
                "FileNotFoundError: no saved model in")
    assert f"hpo worker: {path}: {expected}" in err  # the worker process says why...
    assert f"hpo run: {path}: {expected}" in err  # ...and so does the command that started it
    assert count(trials_of(sqlite_url(tmp_path), "gives-up"), TrialState.FAIL) == 2
