"""CV fold count checked against the data: a shipped study's ``fidelity_steps = 5`` runs on a cohort whose smallest
tissue has fewer training rows than folds (every fold still trains on it), said in one line, kept on the study,
and used by the trials, the export, the retrain and the selection rule; a tissue with one row is a one-line error."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import optuna
import pytest

from data_pipeline import prepare_dataset, synthetic
from hpo.results import export_trial, retrain, study_selection
from hpo.run import run_worker
from hpo.run._launcher import _prepare
from hpo.study import load_study_file
from models.fidelity import fold_count, split_groups, stratified_folds

STUDIES = Path(__file__).resolve().parents[2] / "studies"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A small DepMap-layout cohort like the benchmark's 8-tissue one: 3-12 samples per tissue, replicate lines."""
    folder = tmp_path_factory.mktemp("cohort")
    spec = synthetic.spec_for("full", seed=19, n_genes=150, n_samples=48, n_tissues=6)
    synthetic.generate_files(dataclasses.replace(spec, imbalance=0.9, replicate_share=0.15), folder)
    return folder


def overrides(cohort: Path, tmp_path: Path, split_seed: int) -> dict:
    return {
        "n_trials": 3, "data.source": "depmap", "data.preset": "tiny", "data.top_k_genes": 100,
        "data.expression_path": str(cohort / synthetic.CLASSIC_EXPRESSION_FILE),
        "data.model_path": str(cohort / synthetic.MODEL_FILE), "data.min_samples_per_tissue": 3,
        "data.split_seed": split_seed, "data.cache_dir": str(tmp_path / "cache"),
    }


@pytest.mark.parametrize("split_seed", [0, 1, 2])
@pytest.mark.parametrize("model", ["svc", "logistic_regression"])
def test_a_shipped_cv_study_runs_on_a_small_cohort_and_says_what_its_folds_hold(cohort, tmp_path, monkeypatch, caplog, model,
                                                                    split_seed):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    settings = overrides(cohort, tmp_path, split_seed)
    spec = load_study_file(STUDIES / f"{model}.toml", settings)  # the study-file check no longer refuses it
    assert spec.fixed["fidelity_steps"] == 5
    data = prepare_dataset(spec.data)
    smallest = min(len({str(p) for p, t in zip(data.sample_info["train"]["PatientID"], data.y_train) if t == label})
                   for label in np.unique(data.y_train))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with caplog.at_level(logging.INFO, logger="hpo.run"):
        prepared = _prepare(STUDIES / f"{model}.toml", settings, url, None)
    k = 5
    assert 2 <= smallest < k  # the case the study-file check used to refuse
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("folds:")]
    assert len(lines) == 1 and lines[0].startswith(f"folds: {k}-fold CV on the training split ({k} folds as asked")
    assert "lack it; every fold trains on it" in lines[0] or "lacks it; every fold trains on it" in lines[0]
    for fit_rows, _ in stratified_folds(data.y_train, k, None, split_groups(data.sample_info, "train")):  # what the line claims
        assert set(np.unique(data.y_train[fit_rows])) == set(np.unique(data.y_train))
    study = optuna.load_study(study_name=prepared.name, storage=url)
    assert study.user_attrs["fold_choice"]["fidelity_steps"] == k and study.user_attrs["fold_choice"]["requested"] == 5
    assert study.user_attrs["fixed_params"]["fidelity_steps"] == k  # what export and retrain read

    run_worker(load_study_file(STUDIES / f"{model}.toml", settings), storage_url=url, worker_index=0, num_threads=1)
    trials = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert trials and all(len(t.user_attrs["fold_scores"]) == k for t in trials)
    selection = study_selection(study)
    assert selection.trial is not None
    if selection.noise_kind == "fold" and selection.noise is not None and not selection.kept_reference:
        differences = np.subtract(selection.best.user_attrs["fold_scores"], selection.reference.user_attrs["fold_scores"])
        assert selection.noise == pytest.approx(np.std(differences, ddof=1) / np.sqrt(k))  # k paired folds
    config = export_trial(study)
    assert config["params"]["fidelity_steps"] == k and len(config["source"]["fold_scores"]) == k
    assert config["reference"]["params"]["fidelity_steps"] == k
    # retraining on `train` reproduces the trial's CV with the same k folds
    result = retrain(config, tmp_path / "again", train_split="train", eval_splits=("val",), reference=False)
    assert result.report.n_steps == k


def test_fold_count_keeps_the_folds_asked_and_needs_two_rows_or_patients_per_tissue():
    y = np.array([0] * 3 + [1] * 8)
    k, reason = fold_count(y, 5)
    assert k == 5 and "so 2 held-out folds lack it" in reason
    assert "so 1 held-out fold lacks it" in fold_count(np.array([0] * 4 + [1] * 8), 5)[1]
    assert fold_count(y, 2) == (2, "2 folds as asked: the smallest tissue (0) has 3 training rows in the training split")
    assert fold_count(y, 20)[0] == 11  # at most one fold per training row
    groups = np.array(["a", "a", "b"] + [f"p{i}" for i in range(4)] * 2)  # 6 patients in all
    assert fold_count(y, 8, groups, ["lung", "skin"]) == (6, "6 folds, not the 8 asked: the training split has only 6 patients")
    with pytest.raises(ValueError, match="needs at least 2 patients per tissue, but tissue lung has 1"):
        fold_count(y, 5, np.array(["a"] * 3 + [f"p{i}" for i in range(8)]), ["lung", "skin"])
