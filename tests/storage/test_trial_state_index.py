"""The (study_id, state) index on Optuna's trials table: created on open, used by the per-trial queries."""

from __future__ import annotations

import sqlite3

import optuna
import sqlalchemy
from optuna.trial import TrialState

from hpo.storage import open_storage, running_trial_ids
from hpo.storage._backends import TRIALS_BY_STATE_INDEX


def _index_names(url: str) -> set[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return {index["name"] for index in sqlalchemy.inspect(engine).get_indexes("trials")}
    finally:
        engine.dispose()


def test_a_new_sqlite_storage_gets_the_index_and_the_state_queries_use_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    open_storage(url, heartbeat_interval=None)
    assert {TRIALS_BY_STATE_INDEX, "ix_trials_study_id_number"} <= _index_names(url)
    with sqlite3.connect(tmp_path / "study.db") as connection:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN SELECT state, count(trial_id) FROM trials WHERE study_id = 1 GROUP BY state"
        ).fetchall()
    assert any(f"COVERING INDEX {TRIALS_BY_STATE_INDEX}" in row[-1] for row in plan), plan


def test_an_existing_database_without_the_index_gets_it_and_keeps_its_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    study = optuna.create_study(study_name="old", storage=optuna.storages.RDBStorage(url))  # plain Optuna: no index
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    assert TRIALS_BY_STATE_INDEX not in _index_names(url)
    storage = open_storage(url, heartbeat_interval=None)
    assert TRIALS_BY_STATE_INDEX in _index_names(url)
    assert len(optuna.load_study(study_name="old", storage=storage).trials) == 3
    open_storage(url, heartbeat_interval=None)  # a second open finds it and creates nothing


def test_running_trial_ids_are_read_by_query(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'run.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name="run", storage=storage)
    running = [study.ask() for _ in range(3)]
    study.tell(running[1], 0.5)
    study.enqueue_trial({"x": 0.1})
    expected = sorted(t._trial_id for t in (running[0], running[2]))
    assert running_trial_ids(storage, study._study_id) == expected
    assert running_trial_ids(optuna.storages.InMemoryStorage(), 0) is None
    assert {t.state for t in study.trials} == {TrialState.RUNNING, TrialState.COMPLETE, TrialState.WAITING}


def test_postgresql_gets_the_indexes(postgres_url):
    open_storage(postgres_url, heartbeat_interval=None)
    assert TRIALS_BY_STATE_INDEX in _index_names(postgres_url)
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        prefix = {index["name"] for index in sqlalchemy.inspect(engine).get_indexes("study_system_attributes")}
        assert "ix_study_system_attributes_key_prefix" in prefix
        with engine.connect() as connection:  # an operator class that serves LIKE 'prefix%' whatever the collation
            definition = connection.execute(sqlalchemy.text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_study_system_attributes_key_prefix'")).scalar()
        assert "varchar_pattern_ops" in definition and "(study_id, key" in definition, definition
    finally:
        engine.dispose()
