"""What the objective records to rank trials: tie_break_loss, at_chance, convergence warnings (real SQLite, in process)."""

from __future__ import annotations

import logging
import math

import optuna
import pytest
import tomli_w
from optuna.trial import TrialState

from hpo.run import build_objective
from hpo.run._objective import _chance_flag
from hpo.run._setup import open_study
from hpo.study import load_study_file
from tests.run.test_workers import tiny_study


@pytest.fixture(autouse=True)
def _private_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "hpo-home"))


def _run(tmp_path, spec, data, n_trials):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study(spec, optuna.storages.RDBStorage(url), data_fingerprint=data.fingerprint)
    study.optimize(build_objective(spec, data, num_threads=1), n_trials=n_trials)
    return optuna.load_study(study_name=spec.name, storage=url).get_trials()


def test_a_cv_trial_records_the_mean_fold_tie_break_and_counts_convergence_warnings(tmp_path, tiny_dataset, tiny_data_config):
    content = {
        "name": "lr-folds", "model": "logistic_regression", "metric": "val_balanced_accuracy", "direction": "maximize",
        "n_trials": 2, "device": "cpu", "data": {"preset": "tiny", "cache_dir": str(tiny_data_config.cache_dir)},
        "fixed": {"fidelity": "folds", "fidelity_steps": 3, "max_iter": 2},  # far too few iterations: warnings
        "space": {"C": {"type": "float", "low": 1e-2, "high": 1.0, "log": True}},
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"},
    }
    path = tmp_path / "lr.toml"
    path.write_text(tomli_w.dumps(content))
    trials = _run(tmp_path, load_study_file(path), tiny_dataset, 2)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    for trial in trials:
        loss = trial.user_attrs["tie_break_loss"]
        assert math.isfinite(loss) and loss > 0  # the mean fold log-loss
        assert trial.user_attrs["convergence_warnings"] >= 3  # 3 folds + the final fit, counted not printed
        assert "final_tie_break_loss" not in trial.user_attrs


def test_a_torch_trial_ranks_ties_by_its_validation_loss_at_the_chosen_epoch(tmp_path, tiny_dataset, tiny_data_config):
    spec = load_study_file(tiny_study(tmp_path, tiny_data_config, name="torch-tie", n_trials=2))
    trials = _run(tmp_path, spec, tiny_dataset, 2)
    for trial in trials:
        assert trial.user_attrs["tie_break_loss"] == trial.user_attrs["val_loss"]


def test_a_trial_at_chance_is_flagged_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="hpo.run"):
        assert _chance_flag(7, "val_balanced_accuracy", 0.125, 8) == {"at_chance": True}
    assert "trial 7 ended at chance: val_balanced_accuracy = 0.1250, chance 0.1250 (8 tissues)" in caplog.text
    assert _chance_flag(7, "val_balanced_accuracy", 0.5, 8) == {}
    assert _chance_flag(7, "val_loss", 3.0, 8) == {}
