"""Batched user attributes and buffered reports: the same stored result and pruning as Optuna's per-call writes."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import sqlalchemy

from hpo.storage import BufferedReports, open_storage, set_user_attrs

ATTRS = {"val_loss": 0.5, "model_params": {"lr": 0.01, "hidden": [64, 32]}, "device": "cpu", "steps_run": 12}


def _commits(engine: sqlalchemy.Engine) -> list[int]:
    seen: list[int] = []
    sqlalchemy.event.listen(engine, "commit", lambda _connection: seen.append(1))
    return seen


def test_one_commit_for_many_attributes_on_an_rdb_storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url, heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name="attrs")
    trial = study.ask()
    commits = _commits(storage.engine)
    set_user_attrs(trial, ATTRS)
    assert len(commits) == 1
    assert trial.user_attrs == ATTRS  # the trial object sees them, as after set_user_attr
    study.tell(trial, 1.0)
    stored = optuna.load_study(study_name="attrs", storage=open_storage(url, heartbeat_interval=None)).trials[0]
    assert stored.user_attrs == ATTRS


def test_per_attribute_calls_where_the_storage_has_no_session(tmp_path):
    url = f"journal:///{tmp_path / 'optuna.log'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="attrs")
    trial = study.ask()
    set_user_attrs(trial, ATTRS)
    study.tell(trial, 1.0)
    assert optuna.load_study(study_name="attrs", storage=open_storage(url, heartbeat_interval=None)).trials[0].user_attrs == ATTRS


def test_a_finished_trial_refuses_them_as_optuna_does(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=None))
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(trial, {"late": 1})


@pytest.mark.postgres
def test_one_transaction_on_postgresql(postgres_url, unique_name):
    storage = open_storage(postgres_url, heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name=unique_name)
    trial = study.ask()
    commits = _commits(storage.engine)
    set_user_attrs(trial, ATTRS)
    assert len(commits) == 1
    assert study.trials[0].user_attrs == ATTRS


# -- buffered epoch reports --------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _stored(url: str, name: str, number: int) -> optuna.trial.FrozenTrial:
    study = optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    return study.get_trials()[number]


def test_buffered_reports_reach_the_storage_in_few_transactions(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="reports")
    trial = study.ask()
    clock = _Clock()
    reports = BufferedReports(trial, flush_every_s=2.0, clock=clock)
    assert reports.buffered
    for step in range(10):
        reports.report(0.1 * step, step)
        assert trial._get_latest_trial().intermediate_values[step] == pytest.approx(0.1 * step)  # what pruners see
        clock.now += 0.5
    flushed_before_end = reports.transactions
    assert 0 < flushed_before_end < 10
    stored = _stored(url, "reports", 0).intermediate_values
    assert 0 < len(stored) < 10  # some written already, the rest still buffered
    reports.flush()
    assert reports.transactions == flushed_before_end + 1
    assert _stored(url, "reports", 0).intermediate_values == pytest.approx({s: 0.1 * s for s in range(10)})


def test_buffered_reports_prune_exactly_where_optuna_reports_do(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=None)
    study = optuna.create_study(storage=storage, direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    for level in (0.5, 0.6, 0.7):
        finished = study.ask()
        for step in range(6):
            finished.report(level + 0.01 * step, step)
        study.tell(finished, level)
    curve = [0.5, 0.55, 0.6, 0.8, 0.9, 0.95]  # the trial's best so far is what the median pruner judges

    def decisions(report: Any, trial: optuna.Trial) -> list[bool]:
        out = []
        for step, value in enumerate(curve):
            report(value, step)
            out.append(trial.should_prune())
        return out

    plain = study.ask()
    expected = decisions(plain.report, plain)
    buffered = study.ask()
    assert decisions(BufferedReports(buffered, flush_every_s=3600).report, buffered) == expected
    assert True in expected and False in expected  # the comparison means something


def test_a_pruned_trial_told_after_the_flush_takes_its_last_report(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="pruned")
    trial = study.ask()
    reports = BufferedReports(trial, flush_every_s=3600)
    for step, value in enumerate([0.3, 0.2, 0.1]):
        reports.report(value, step)
    reports.flush()
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    stored = _stored(url, "pruned", 0)
    assert stored.state == optuna.trial.TrialState.PRUNED and stored.value == pytest.approx(0.1)


def test_a_repeated_step_is_ignored_as_optuna_does(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="twice")
    trial = study.ask()
    reports = BufferedReports(trial)
    reports.report(0.5, 3)
    reports.report(0.9, 3)
    reports.flush()
    assert "already reported" in caplog.text
    assert _stored(url, "twice", 0).intermediate_values == {3: 0.5}


def test_flushing_into_a_finished_trial_fails_loudly(tmp_path):
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=None))
    trial = study.ask()
    reports = BufferedReports(trial, flush_every_s=3600)
    reports.report(0.5, 0)
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        reports.flush()


def test_storages_without_sessions_report_straight_away(tmp_path):
    url = f"journal:///{tmp_path / 'o.log'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="journal")
    trial = study.ask()
    reports = BufferedReports(trial)
    assert not reports.buffered
    reports.report(0.5, 0)
    assert _stored(url, "journal", 0).intermediate_values == {0: 0.5}  # no flush needed


@pytest.mark.postgres
def test_buffered_reports_on_postgresql(postgres_url, unique_name):
    study = optuna.create_study(storage=open_storage(postgres_url, heartbeat_interval=None), study_name=unique_name)
    trial = study.ask()
    reports = BufferedReports(trial, flush_every_s=3600)
    for step in range(20):
        reports.report(step / 20, step)
    commits = _commits(study._storage._backend.engine)
    reports.flush()
    assert len(commits) == 1
    assert _stored(postgres_url, unique_name, 0).intermediate_values == pytest.approx({s: s / 20 for s in range(20)})


def test_every_epoch_of_a_worker_trial_is_stored(tmp_path, tiny_dataset, tiny_data_config, monkeypatch):
    from hpo.run import run_worker
    from hpo.study import load_study_file
    from tests.run.test_workers import tiny_study

    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    path = tiny_study(tmp_path, tiny_data_config, name="epochs", n_trials=2, **{"fixed.max_epochs": 6})
    run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    trials = optuna.load_study(study_name="epochs", storage=open_storage(url, heartbeat_interval=None)).trials
    assert len(trials) == 2
    for trial in trials:
        assert len(trial.intermediate_values) == trial.user_attrs["steps_run"] > 0
        assert {"threads", "worker", "train_seconds", "val_balanced_accuracy", "final_lr"} <= set(trial.user_attrs)
        assert not set(trial.user_attrs) & set(trial.params)  # no attribute named like a parameter


def test_keys_the_trial_already_has_are_updated(tmp_path):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="retried")
    # a retried trial arrives with its original's attributes
    study.enqueue_trial({}, user_attrs={"fail_reason": "out of memory", "kept": 1})
    trial = study.ask()
    set_user_attrs(trial, {"fail_reason": "", "worker": "host:1"})
    study.tell(trial, 1.0)
    assert _stored(url, "retried", 0).user_attrs == {"fail_reason": "", "kept": 1, "worker": "host:1"}
