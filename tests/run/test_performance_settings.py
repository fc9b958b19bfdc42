"""Settings the performance figures depend on (benchmarks/RESULTS.md): asserted, never timed."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
import sqlalchemy
import torch

from hpo.run import run_worker
from hpo.run._launcher import THREAD_VARIABLES, worker_environment
from hpo.storage import open_storage
from hpo.study import load_study_file
from models.registry import build_model
from tests.run.test_workers import sqlite_url, tiny_study


def test_default_sqlite_storage_is_wal_and_commits_without_fsync(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    for _ in range(2):  # the first connection and a later one from the pool
        with storage.engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(sqlalchemy.text("PRAGMA synchronous")).scalar() == 1  # NORMAL, not FULL (2)
        storage.engine.dispose()


@pytest.mark.slow
def test_each_worker_gets_one_thread_unless_hpo_num_threads_says_otherwise_and_torch_uses_it(monkeypatch):
    # benchmarks/threads.py: two threads per worker ran small trials 7x slower on a loaded 2-core machine
    monkeypatch.delenv("HPO_NUM_THREADS", raising=False)
    for cores, workers in ((2, 1), (2, 2), (16, 4)):
        env = worker_environment(0, workers, [], cores)
        assert {env[name] for name in THREAD_VARIABLES} == {"1"}, (cores, workers)
    for value, expected in (("4", "4"), ("0", "1"), ("x", "1"), (" 2 ", "2")):
        monkeypatch.setenv("HPO_NUM_THREADS", value)
        assert {worker_environment(0, 1, [], 16)[name] for name in THREAD_VARIABLES} == {expected}, value
    monkeypatch.setenv("HPO_NUM_THREADS", "1")
    env = worker_environment(1, 2, [], 2)
    threads = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert threads == "1"


def test_a_model_trains_with_the_thread_count_it_is_given(tiny_dataset):
    before = torch.get_num_threads()
    try:
        build_model("classifier", {"max_epochs": 1, "hidden_dim": 16, "latent_dim": 8}, device="cpu", num_threads=1).fit(tiny_dataset)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_worker_moves_its_start_up_objects_out_of_the_collectors_reach(tmp_path, tiny_dataset, tiny_data_config):
    # Without gc.freeze() the gc.collect() after every trial walks every object torch, optuna and
    # sqlalchemy created (0.15-0.5 s per trial on 2 cores, benchmarks/overhead.py).
    path = tiny_study(tmp_path, tiny_data_config, name="frozen", n_trials=1, **{"fixed.max_epochs": 1})
    gc.unfreeze()
    try:
        report = run_worker(load_study_file(path), storage_url=sqlite_url(tmp_path), worker_index=0, num_threads=1)
        assert report.complete == 1
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


def _pruning_decisions(pruner, reads: list[int] | None = None) -> list[tuple[int, int]]:
    """Run 20 seeded trials of 10 reports each; the (trial, step) pairs where the pruner said stop."""
    import random

    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    if reads is not None:
        original = study._storage.get_all_trials

        def counted(*args, **kwargs):
            reads.append(1)
            return original(*args, **kwargs)

        study._storage.get_all_trials = counted
    rng, decisions = random.Random(1), []
    for number in range(20):
        trial = study.ask()
        x, state = trial.suggest_float("x", 0, 1), TrialState.COMPLETE
        for step in range(10):
            trial.report(x * step + 0.1 * rng.random(), step)
            if trial.should_prune():
                decisions.append((number, step))
                state = TrialState.PRUNED
                break
        study.tell(trial, x if state == TrialState.COMPLETE else None, state=state)
    return decisions


def test_median_and_percentile_pruners_decide_as_optunas_but_read_completed_trials_once_per_trial():
    import optuna

    from hpo.samplers import build_pruner

    stock_reads: list[int] = []
    ours_reads: list[int] = []
    stock = _pruning_decisions(optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2), stock_reads)
    ours = _pruning_decisions(build_pruner("median", {"n_startup_trials": 3, "n_warmup_steps": 2}), ours_reads)
    assert ours == stock and len(stock) >= 5
    # reads of the trials: study.ask() makes one per trial; Optuna's pruner one more per report, ours one per trial
    assert len(stock_reads) >= 20 + 100
    assert len(ours_reads) <= 20 + 20
    assert _pruning_decisions(build_pruner("percentile", {"percentile": 25.0, "n_startup_trials": 3})) == (
        _pruning_decisions(optuna.pruners.PercentilePruner(25.0, n_startup_trials=3))
    )
    assert type(build_pruner("median", {})).__name__ == "MedianPruner"  # prune reasons name it
