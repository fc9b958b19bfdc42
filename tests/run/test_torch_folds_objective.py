"""Cross-validated PyTorch studies: value = mean fold score, pruners see fold x epoch progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w
from optuna.trial import TrialState

from hpo.run import build_objective
from hpo.run._setup import open_study
from hpo.study import load_study_file

N_FOLDS, EPOCHS = 3, 3


@pytest.fixture(autouse=True)
def _private_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "hpo-home"))


def classifier_study(tmp_path: Path, data_config, *, fidelity: str = "folds", pruner: str = "none") -> object:
    content = {
        "name": f"torch-cv-{pruner}",
        "model": "classifier",
        "metric": "val_balanced_accuracy",
        "direction": "maximize",
        "n_trials": 2,
        "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": str(data_config.cache_dir)},
        "fixed": {"fidelity": fidelity, "fidelity_steps": N_FOLDS, "max_epochs": EPOCHS, "hidden_dim": 32,
                  "latent_dim": 8, "n_layers": 1},
        "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        "sampler": {"name": "random", "seed": 1},
        "pruner": {"name": pruner},
    }
    path = tmp_path / f"{content['name']}.toml"
    path.write_text(tomli_w.dumps(content))
    return load_study_file(path)


def run(tmp_path: Path, spec, data, n_trials: int) -> list:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study(spec, optuna.storages.RDBStorage(url), data_fingerprint=data.fingerprint)
    study.optimize(build_objective(spec, data, num_threads=1), n_trials=n_trials)
    return optuna.load_study(study_name=spec.name, storage=url).get_trials()


@pytest.mark.slow
def test_a_torch_folds_trial_is_valued_at_its_mean_fold_score_with_epochs_reported_per_fold(
    tmp_path, tiny_dataset, tiny_data_config
):
    (trial,) = run(tmp_path, classifier_study(tmp_path, tiny_data_config, fidelity="auto"), tiny_dataset, 1)
    assert trial.state == TrialState.COMPLETE  # auto: 126 training rows -> folds
    scores = trial.user_attrs["fold_scores"]
    assert len(scores) == N_FOLDS
    assert trial.value == pytest.approx(np.mean(scores), abs=1e-12) == trial.user_attrs["cv_mean"]
    assert trial.user_attrs["cv_std"] == pytest.approx(np.std(scores), abs=1e-12)
    assert sorted(trial.intermediate_values) == list(range(1, N_FOLDS * EPOCHS + 1))  # step = fold * epochs + epoch
    assert 0 < trial.user_attrs["tie_break_loss"] < 5  # the CV mean of the folds' validation loss
    assert 1 <= trial.user_attrs["best_epoch"] <= EPOCHS and 1 <= trial.user_attrs["retrain_epochs"] <= EPOCHS
    assert "val_split_warning" not in trial.user_attrs


@pytest.mark.slow
def test_wilcoxon_sees_one_fold_score_per_step(tmp_path, tiny_dataset, tiny_data_config):
    trials = run(tmp_path, classifier_study(tmp_path, tiny_data_config, pruner="wilcoxon"), tiny_dataset, 2)
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        scores = trial.user_attrs["fold_scores"]
        assert trial.intermediate_values == {k + 1: score for k, score in enumerate(scores)}
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(np.mean(scores), abs=1e-12)
