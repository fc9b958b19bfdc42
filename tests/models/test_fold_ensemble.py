"""The fold-average retrain (models.fold_ensemble) and ``hpo train --config --retrain-mode``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from data_pipeline import DataConfig, PreparedDataset
from hpo.cli import main
from hpo.results import write_config
from models import load_model
from models.fidelity import split_groups, stratified_folds
from models.fold_ensemble import ENSEMBLE_NAME, FoldEnsemble
from models.registry import resolve_model_params
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)

N_FOLDS = 3
PARAMS = {"fidelity": "folds", "fidelity_steps": N_FOLDS, "max_epochs": 3, "hidden_dim": 32, "latent_dim": 8,
          "batch_size": 32}


def ensemble(model: str, data: PreparedDataset, **changes) -> FoldEnsemble:
    params = resolve_model_params(model, {**PARAMS, **changes})
    return FoldEnsemble(model, params, device="cpu", seed=0, num_threads=1).fit(data, train_split="train+val")


@pytest.fixture(scope="module")
def classifier_ensemble(tiny_dataset: PreparedDataset) -> FoldEnsemble:
    return ensemble("classifier", tiny_dataset)


def test_probabilities_are_the_mean_of_the_fold_models(classifier_ensemble, tiny_dataset) -> None:
    fitted = classifier_ensemble
    X_test, y_test = tiny_dataset.split("test")
    assert fitted.n_folds == N_FOLDS
    by_fold = [model.predict_proba(inputs) for model, inputs in zip(fitted.models_, fitted.fold_inputs(X_test))]
    averaged = fitted.predict_proba(X_test)
    np.testing.assert_allclose(averaged, np.mean(by_fold, axis=0), rtol=0, atol=1e-7)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-5)
    assert (fitted.predict(X_test) == averaged.argmax(axis=1)).all()
    metrics = fitted.evaluate(tiny_dataset, "test")
    assert metrics["test_accuracy"] == pytest.approx(float(np.mean(averaged.argmax(axis=1) == y_test)))
    assert metrics["test_loss"] == pytest.approx(-np.mean(np.log(averaged[np.arange(len(y_test)), y_test])), rel=1e-6)

    # the trial's folds over train+val (stratified, patient-grouped, the fold seed); scaling refitted per fold
    X, y = tiny_dataset.split("train+val")
    fit_rows, held_rows = stratified_folds(y, N_FOLDS, None, split_groups(tiny_dataset.sample_info, "train+val"))[0]
    raw = np.asarray(X, dtype=np.float64) * tiny_dataset.feature_std + tiny_dataset.feature_mean
    scaler = StandardScaler().fit(raw[fit_rows][:, fitted.genes_[0]])
    np.testing.assert_allclose(fitted.scale_mean_[0], scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(fitted.scale_std_[0], scaler.scale_, rtol=1e-6)
    # each fold model stopped early on its held-out fold
    rows = [row for row in fitted.history_ if row["fold"] == 0]
    assert len(fitted.fold_results_) == N_FOLDS and "val_loss" in rows[0]
    assert fitted.models_[0].n_features_in_ == len(fitted.genes_[0])


def test_save_and_load_give_the_same_predictions(classifier_ensemble, tiny_dataset, tmp_path) -> None:
    X_test = tiny_dataset.X_test
    classifier_ensemble.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "model.json").read_text())["name"] == ENSEMBLE_NAME
    loaded = load_model(tmp_path / "model", device="cpu")
    assert isinstance(loaded, FoldEnsemble) and loaded.model == "classifier" and loaded.n_folds == N_FOLDS
    np.testing.assert_array_equal(loaded.predict_proba(X_test), classifier_ensemble.predict_proba(X_test))
    assert loaded.evaluate(tiny_dataset, "test") == classifier_ensemble.evaluate(tiny_dataset, "test")


def test_the_conv_classifier_averages_its_fold_models_too(tiny_dataset, tmp_path) -> None:
    params = {"fidelity_steps": N_FOLDS, "max_epochs": 2, "conv_layers": 1, "conv_channels": 4, "head_dim": 16}
    fitted = FoldEnsemble("conv_classifier", resolve_model_params("conv_classifier", params), device="cpu",
                          seed=0, num_threads=1).fit(tiny_dataset)
    X_test = tiny_dataset.X_test
    np.testing.assert_allclose(fitted.predict_proba(X_test), np.mean(fitted.fold_probabilities(X_test), axis=0))
    loaded = load_model(fitted.save(tmp_path / "conv"), device="cpu")
    np.testing.assert_array_equal(loaded.predict(X_test), fitted.predict(X_test))


def test_autoencoder_reconstruction_is_the_mean_of_the_fold_reconstructions(tiny_dataset) -> None:
    fitted = ensemble("autoencoder", tiny_dataset, n_layers=1)
    X_test = np.asarray(tiny_dataset.X_test)
    parts = fitted.fold_reconstructions(X_test)
    assert all(values.shape == (len(X_test), len(genes)) for values, genes in parts)
    everywhere = [gene for gene in range(X_test.shape[1]) if all(gene in set(genes) for _, genes in parts)]
    reconstruction = fitted.predict(X_test)
    by_hand = np.mean([values[:, np.searchsorted(genes, everywhere)] for values, genes in parts], axis=0)
    np.testing.assert_allclose(reconstruction[:, everywhere], by_hand, atol=1e-5)
    mse = fitted.evaluate(tiny_dataset, "test")["test_reconstruction_mse"]
    assert mse == pytest.approx(float(np.mean((reconstruction.astype(np.float64) - X_test) ** 2)), rel=1e-5)


def retrain_config(tmp_path, tiny_data_config: DataConfig, model: str = "classifier", **params) -> str:
    config = {
        "model": model, "seed": 0, "device": "cpu",
        "params": {**PARAMS, **params} if model != "svc" else {"C": 1.0},
        "data": {"preset": "tiny", "cache_dir": str(tiny_data_config.cache_dir)},
        "source": {"trial": 3, "retrain_epochs": 2},
    }
    if model != "svc":
        config["reference"] = {"trial": 0, "params": {**PARAMS, "lr": 3e-3}, "retrain_epochs": 2}
    path = tmp_path / f"{model}.toml"
    write_config(config, path)
    return str(path)


def test_hpo_train_fold_average_retrains_both_and_saves_a_loadable_ensemble(tmp_path, tiny_data_config,
                                                                            tiny_dataset, capsys) -> None:
    config = retrain_config(tmp_path, tiny_data_config)
    out = tmp_path / "final"
    assert main(["train", "--config", config, "--out", str(out), "--retrain-mode", "fold-average",
                 "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "(fold-average retrain)" in printed and "test_balanced_accuracy" in printed and "defaults" in printed
    record = json.loads((out / "metrics.json").read_text())
    assert record["retrain_mode"] == "fold-average" and len(record["fold_results"]) == N_FOLDS
    loaded = load_model(out / "model", device="cpu")
    assert loaded.evaluate(tiny_dataset, "test")["test_accuracy"] == pytest.approx(record["metrics"]["test_accuracy"])
    reference = json.loads((out / "reference" / "metrics.json").read_text())
    assert reference["retrain_mode"] == "fold-average" and reference["params"]["lr"] == pytest.approx(3e-3)

    # a trial scored on one validation split (no fold_scores) retrains as one model with its schedule by default
    assert main(["train", "--config", config, "--out", str(tmp_path / "schedule"), "--threads", "1",
                 "--no-reference"]) == 0
    assert "(schedule retrain)" in capsys.readouterr().out
    record = json.loads((tmp_path / "schedule" / "metrics.json").read_text())
    assert "retrain_mode" not in record and record["params"]["stop_epoch"] > 0  # the trial's schedule, stopped
    assert json.loads((tmp_path / "schedule" / "model" / "model.json").read_text())["name"] == "classifier"


def test_a_cross_validated_trial_retrains_as_one_model_unless_fold_average_is_asked_for(
    tmp_path, tiny_data_config
) -> None:
    """The default follows the small-cohort benchmark: the fold average tied for the classifier and, since the
    autoencoder starts at PCA (2026-12-04), reconstructed worse than one model on all rows on every split."""
    from hpo.results import read_config, resolve_retrain_mode

    path = retrain_config(tmp_path, tiny_data_config, "autoencoder", n_layers=1)
    config = read_config(path)
    config["source"]["fold_scores"] = [0.5, 0.6, 0.7]  # what hpo export writes for a CV trial
    write_config(config, path)
    assert main(["train", "--config", path, "--out", str(tmp_path / "cv"), "--threads", "1", "--no-reference",
                 "--retrain-mode", "fold-average"]) == 0
    assert json.loads((tmp_path / "cv" / "model" / "model.json").read_text())["name"] == ENSEMBLE_NAME
    assert main(["train", "--config", path, "--out", str(tmp_path / "one"), "--threads", "1", "--no-reference"]) == 0
    assert json.loads((tmp_path / "one" / "model" / "model.json").read_text())["name"] == "autoencoder"
    for model in ("autoencoder", "classifier", "conv_classifier", "svc"):
        assert resolve_retrain_mode(model, None, "train+val", cross_validated=True) == "schedule"
    assert resolve_retrain_mode("autoencoder", None, "train", cross_validated=True) == "schedule"
    assert resolve_retrain_mode("autoencoder", None, "train+val", cross_validated=False) == "schedule"


@pytest.mark.parametrize(
    ("model", "arguments", "message"),
    [
        ("svc", ["--retrain-mode", "fold-average"], "is for PyTorch models; 'svc' is a sklearn model"),
        ("classifier", ["--retrain-mode", "fold-average", "--train-split", "train"], "not with --train-split train"),
        (None, ["--model", "classifier", "--retrain-mode", "fold-average"], "give --config FILE"),
    ],
)
def test_bad_retrain_mode_combinations_end_in_one_line(tmp_path, tiny_data_config, capsys, model, arguments,
                                                       message) -> None:
    config = ["--config", retrain_config(tmp_path, tiny_data_config, model)] if model else []
    assert main(["train", *config, *arguments, "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before any training or output
