"""Cross-validated studies (``fidelity = "folds"``): the trial value is the mean fold score, stored with its folds.

Studies run in process against a real SQLite file; the scores are checked against an
independent scikit-learn computation: ``cross_val_score`` of a Pipeline (VarianceThreshold and,
with ``top_k_genes``, SelectKBest by variance; StandardScaler; the model) on the training split
before the gene filter, so the filter and the scaling are fitted inside each fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w
from optuna.trial import TrialState
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from data_pipeline import prepare_dataset
from hpo.results import export_trial, retrain
from hpo.run import build_objective
from hpo.run._setup import open_study
from hpo.study import load_study_file
from models.fidelity import FOLD_SEED
from tests.support.models_support import gene_filter_steps

N_FOLDS = 3


@pytest.fixture(autouse=True)
def _private_run_directory(tmp_path, monkeypatch):
    """Artifacts (confusion matrices of new best trials) go to a temporary run directory."""
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "hpo-home"))


def study_spec(tmp_path: Path, data_config, *, fidelity: str = "folds", **data: object):
    """A logistic-regression study on the tiny data set (C tuned), ``fidelity_steps`` = 3."""
    content = {
        "name": f"cv-{fidelity}",
        "model": "logistic_regression",
        "metric": "val_balanced_accuracy",
        "direction": "maximize",
        "n_trials": 3,
        "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": str(data_config.cache_dir), **data},
        "fixed": {"fidelity": fidelity, "fidelity_steps": N_FOLDS, "max_iter": 300},
        "space": {"C": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
        "sampler": {"name": "random", "seed": 3},
        "pruner": {"name": "none"},
    }
    path = tmp_path / f"{content['name']}.toml"
    path.write_text(tomli_w.dumps(content))
    return load_study_file(path)


def run_study(tmp_path: Path, spec, data, *, n_trials: int, pruner: optuna.pruners.BasePruner | None = None) -> list:
    """Run ``n_trials`` in this process on a SQLite file; the trials as stored."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study(spec, optuna.storages.RDBStorage(url), data_fingerprint=data.fingerprint)
    study.pruner = pruner or study.pruner
    study.optimize(build_objective(spec, data, num_threads=1), n_trials=n_trials)
    return optuna.load_study(study_name=spec.name, storage=url).get_trials()


def test_a_folds_trials_value_is_the_mean_of_its_fold_scores_as_scikit_learn_computes_it(
    tmp_path, tiny_dataset, tiny_data_config
):
    trials = run_study(tmp_path, study_spec(tmp_path, tiny_data_config), tiny_dataset, n_trials=3)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    cv = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=FOLD_SEED)
    values = set()
    for trial in trials:
        scores = trial.user_attrs["fold_scores"]
        assert len(scores) == N_FOLDS and scores == list(trial.intermediate_values.values())
        assert trial.value == pytest.approx(np.mean(scores), abs=1e-12) == trial.user_attrs["cv_mean"]
        assert trial.user_attrs["cv_std"] == pytest.approx(np.std(scores), abs=1e-12)
        pipeline = make_pipeline(
            *gene_filter_steps(tiny_dataset.settings),
            StandardScaler(),
            LogisticRegression(C=trial.params["C"], max_iter=300, class_weight="balanced", random_state=0),
        )
        independent = cross_val_score(
            pipeline, np.asarray(tiny_dataset.X_train_unfiltered), np.asarray(tiny_dataset.y_train),
            cv=cv, scoring="balanced_accuracy",
        )
        assert scores == pytest.approx(independent.tolist(), abs=1e-12)
        # the validation split's score is recorded too, under its own name, and is not the value
        assert trial.user_attrs["val_balanced_accuracy"] == pytest.approx(
            build_and_score_on_val(trial.params["C"], tiny_dataset), abs=1e-12
        )
        assert "fold" not in trial.user_attrs and "val_split_warning" not in trial.user_attrs  # ranked by CV
        values.add(round(trial.value, 9))
    assert len(values) > 1  # the trials are told apart


def build_and_score_on_val(C: float, data) -> float:
    from sklearn.metrics import balanced_accuracy_score

    model = LogisticRegression(C=C, max_iter=300, class_weight="balanced", random_state=0)
    model.fit(np.asarray(data.X_train), np.asarray(data.y_train))
    return float(balanced_accuracy_score(data.y_val, model.predict(np.asarray(data.X_val))))


def test_a_pruned_folds_trial_stores_the_fold_scores_it_ran(tmp_path, tiny_dataset, tiny_data_config):
    # prunes every trial at its second fold (no balanced accuracy reaches 2)
    pruner = optuna.pruners.ThresholdPruner(lower=2.0, n_warmup_steps=2)
    trials = run_study(tmp_path, study_spec(tmp_path, tiny_data_config), tiny_dataset, n_trials=2, pruner=pruner)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for trial in trials:
        scores = trial.user_attrs["fold_scores"]
        assert len(scores) == 2 and scores == list(trial.intermediate_values.values())
        assert trial.user_attrs["cv_mean"] == pytest.approx(np.mean(scores), abs=1e-12)
        assert "pruned by ThresholdPruner at step 2" in trial.user_attrs["prune_reason"]


def test_a_study_ranked_on_a_small_validation_split_says_so_and_a_large_one_does_not(
    tmp_path, tiny_dataset, tiny_data_config
):
    for folder in ("small", "large"):
        (tmp_path / folder).mkdir()
    spec = study_spec(tmp_path, tiny_data_config, fidelity="none")
    (small,) = run_study(tmp_path / "small", spec, tiny_dataset, n_trials=1)
    n_val = len(tiny_dataset.y_val)
    small_study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{tmp_path / 'small' / 'optuna.db'}")
    assert "val_split_warning" not in small.user_attrs  # on the study: one sentence, not one per trial page
    assert small_study.user_attrs["val_split_warning"] == (
        f"validation split has {n_val} samples over {tiny_dataset.n_classes} tissues: ties are likely; "
        'consider fidelity = "folds" or a larger val_fraction'
    )
    assert "fold_scores" not in small.user_attrs and small.value == small.user_attrs["val_balanced_accuracy"]

    spec = study_spec(tmp_path, tiny_data_config, fidelity="none", val_fraction=0.4)
    data = prepare_dataset(spec.data)
    assert len(data.y_val) >= 50
    (large,) = run_study(tmp_path / "large", spec, data, n_trials=1)
    large_study = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{tmp_path / 'large' / 'optuna.db'}")
    assert large.state == TrialState.COMPLETE and "val_split_warning" not in large_study.user_attrs


def test_a_folds_trial_exports_its_folds_and_retrains_to_its_validation_score(tmp_path, tiny_dataset, tiny_data_config):
    spec = study_spec(tmp_path, tiny_data_config)
    (trial,) = run_study(tmp_path, spec, tiny_dataset, n_trials=1)
    config = export_trial(optuna.load_study(study_name=spec.name, storage=f"sqlite:///{tmp_path / 'optuna.db'}"))
    assert config["source"]["value"] == trial.value
    assert config["source"]["fold_scores"] == trial.user_attrs["fold_scores"]
    assert config["metrics"]["cv_mean"] == trial.value and config["metrics"]["cv_std"] == trial.user_attrs["cv_std"]
    assert "val_split_warning" not in config["source"]
    result = retrain(config, tmp_path / "again", train_split="train", eval_splits=("val",),
                     num_threads=1, cache_dir=tiny_data_config.cache_dir)
    # retraining on train reproduces the validation split's score, which is not the CV mean
    assert result.reproduced == ("val_balanced_accuracy", trial.user_attrs["val_balanced_accuracy"],
                                 pytest.approx(trial.user_attrs["val_balanced_accuracy"], abs=1e-12))
