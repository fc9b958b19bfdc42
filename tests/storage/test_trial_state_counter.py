"""TrialStateCounter: the admission's counts by state, read incrementally, equal a full count at every step."""

from __future__ import annotations

import random

import optuna
import pytest
from optuna.trial import TrialState

import hpo.storage._optuna as optuna_queries
from hpo.storage import TrialStateCounter, count_trials_by_state, open_storage

EXCUSED = ("stale", "interrupted")


def _exercise(storage, monkeypatch, seed: int) -> int:
    """Random asks, tells, prunes, failures (some excused), enqueued retries; the counter checked after each."""
    monkeypatch.setattr(optuna_queries, "SETTLE_WINDOW", 3)  # settle early and often
    study = optuna.create_study(study_name=f"counter-{seed}", storage=storage)
    sid = study._study_id
    counter = TrialStateCounter(storage, sid, EXCUSED)
    rng = random.Random(seed)
    running: list[optuna.Trial] = []
    checks = 0
    for _ in range(80):
        action = rng.random()
        if action < 0.45 or not running:
            running.append(study.ask())
        else:
            trial = running.pop(rng.randrange(len(running)))
            outcome = rng.random()
            if outcome < 0.5:
                study.tell(trial, rng.random())
            elif outcome < 0.7:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                if outcome < 0.85:
                    trial.set_user_attr("fail_reason", rng.choice([*EXCUSED, "oom"]))
                study.tell(trial, state=TrialState.FAIL)
                if rng.random() < 0.5:
                    study.enqueue_trial({})
        assert counter.counts() == count_trials_by_state(storage, sid, EXCUSED)
        checks += 1
    assert counter._below > 0, "nothing was ever settled: the test would not test the settled counts"
    return checks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_counter_equals_a_full_count_at_every_step_sqlite(tmp_path, monkeypatch, seed):
    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval=None)
    assert _exercise(storage, monkeypatch, seed) == 80


def test_the_counter_equals_a_full_count_at_every_step_postgresql(postgres_url, monkeypatch, unique_name):
    storage = open_storage(postgres_url, heartbeat_interval=None)
    try:
        _exercise(storage, monkeypatch, hash(unique_name) % 1000)
    finally:
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            if summary.study_name.startswith("counter-"):
                optuna.delete_study(study_name=summary.study_name, storage=storage)


def test_a_long_running_trial_keeps_everything_after_it_unsettled(tmp_path, monkeypatch):
    monkeypatch.setattr(optuna_queries, "SETTLE_WINDOW", 2)
    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name="long", storage=storage)
    counter = TrialStateCounter(storage, study._study_id, EXCUSED)
    slow = study.ask()
    for _ in range(10):
        study.tell(study.ask(), 1.0)
        counter.counts()
    assert counter._below <= slow._trial_id  # pinned by the RUNNING trial
    study.tell(slow, 2.0)
    assert counter.counts() == {"COMPLETE": 11, "FAIL_EXCUSED": 0}
    assert counter._below > slow._trial_id
