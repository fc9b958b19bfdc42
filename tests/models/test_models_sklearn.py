"""scikit-learn baselines: fit, predict every tissue, fidelity steps, embeddings, save/load."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from data_pipeline import PreparedDataset
from models import build_model, load_model
from models.fidelity import nested_stratified_subsets
from tests.support.models_support import gene_filter_steps, one_torch_thread  # noqa: F401  (autouse)

BASELINES = ["svc", "random_forest", "knn", "logistic_regression", "kpca_svc"]
SMALL_AE = {"ae_hidden_sizes": [64], "ae_latent_dim": 16, "ae_max_epochs": 3}


def fit(name: str, data: PreparedDataset, params: dict | None = None):
    steps: list[tuple[int, dict]] = []
    model = build_model(name, params, device="cpu", num_threads=1)
    model.fit(data, on_step=lambda step, metrics: steps.append((step, dict(metrics))))
    return model, steps


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_fits_and_predicts_every_tissue(tiny_dataset: PreparedDataset, name: str) -> None:
    params = {"n_estimators": 50} if name == "random_forest" else {}
    model, steps = fit(name, tiny_dataset, params)
    assert set(np.unique(model.predict(tiny_dataset.X_train))) == set(range(tiny_dataset.n_classes))
    metrics = model.evaluate(tiny_dataset, "val")
    assert set(metrics) == {"val_accuracy", "val_balanced_accuracy", "val_macro_f1"}
    assert metrics["val_balanced_accuracy"] > 2 / tiny_dataset.n_classes
    assert [step for step, _ in steps] == [1]  # fidelity "none": one step, the validation metrics
    assert {k: v for k, v in steps[0][1].items() if k != "tie_break_loss"} == metrics
    assert np.isfinite(steps[0][1]["tie_break_loss"])  # and the smooth loss that breaks ties between trials
    assert model.n_steps_ == 1 and model.n_parameters_ == 0 and model.train_seconds_ > 0


def test_subsets_fidelity_reports_each_growing_subset(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit("svc", tiny_dataset, {"fidelity": "subsets", "fidelity_steps": 4})
    assert [step for step, _ in steps] == [1, 2, 3, 4]
    fractions = [metrics["train_fraction"] for _, metrics in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] < 0.4
    # the final model is the one fitted on the whole training split
    assert model.evaluate(tiny_dataset, "val")["val_accuracy"] == steps[-1][1]["val_accuracy"]


def test_nested_subsets_are_stratified_and_nested() -> None:
    y = np.repeat(np.arange(3), [30, 12, 3])
    subsets = nested_stratified_subsets(y, 3, seed=0)
    assert [len(s) for s in subsets][-1] == len(y)
    for smaller, larger in zip(subsets, subsets[1:]):
        assert set(smaller) < set(larger)
    assert set(y[subsets[0]]) == {0, 1, 2}  # every class in the smallest subset
    assert np.bincount(y[subsets[0]]).tolist() == [10, 4, 1]


def test_folds_fidelity_reports_one_step_per_fold_then_fits_everything(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit("logistic_regression", tiny_dataset, {"fidelity": "folds", "fidelity_steps": 3})
    assert [step for step, _ in steps] == [1, 2, 3]
    assert [metrics["fold"] for _, metrics in steps] == [0.0, 1.0, 2.0]
    assert all("val_balanced_accuracy" in metrics for _, metrics in steps)
    # the held-out folds differ from the validation split: the scores are not all the validation score
    final = model.evaluate(tiny_dataset, "val")["val_balanced_accuracy"]
    assert len({round(metrics["val_balanced_accuracy"], 6) for _, metrics in steps} | {round(final, 6)}) > 1


def test_folds_fidelity_uses_the_data_sets_fold_assignment(tiny_dataset: PreparedDataset) -> None:
    folds = np.arange(len(tiny_dataset.y_train)) % 4
    with_folds = dataclasses.replace(tiny_dataset, folds=folds)
    _, steps = fit("knn", with_folds, {"fidelity": "folds", "fidelity_steps": 2})
    assert len(steps) == 4


FOLD_CASES = pytest.mark.parametrize(
    ("name", "params", "estimator"),
    [
        ("knn", {"n_neighbors": 5, "metric": "euclidean", "weights": "uniform"},
         KNeighborsClassifier(n_neighbors=5, metric="euclidean")),
        ("logistic_regression", {"C": 0.01},
         LogisticRegression(C=0.01, max_iter=500, class_weight="balanced", random_state=0)),
    ],
)


def fold_scores(name: str, data: PreparedDataset, params: dict) -> list[float]:
    _, steps = fit(name, data, {**params, "fidelity": "folds"})
    return [metrics["val_balanced_accuracy"] for _, metrics in steps]


def predefined_cv(model, X: np.ndarray, y: np.ndarray, folds: np.ndarray) -> list[float]:
    return cross_val_score(model, X, y, cv=PredefinedSplit(folds), scoring="balanced_accuracy").tolist()


@FOLD_CASES
def test_folds_standardise_on_each_folds_training_rows_not_the_held_out_fold(
    tiny_dataset: PreparedDataset, name: str, params: dict, estimator
) -> None:
    """A batch effect in one fold's rows: scaling fitted with that fold included (a leak) scores it differently."""
    folds = np.arange(len(tiny_dataset.y_train)) % 3
    X = np.array(tiny_dataset.X_train_unfiltered)
    X[folds == 0, ::2] += 4.0  # half the genes shifted in the rows of fold 0
    data = dataclasses.replace(tiny_dataset, X_train_unfiltered=X, folds=folds)
    scores = fold_scores(name, data, params)
    y, filters = data.y_train, gene_filter_steps(data.settings)
    assert scores == pytest.approx(
        predefined_cv(make_pipeline(*filters, StandardScaler(), clone(estimator)), X, y, folds), abs=1e-12
    )
    # scaling fitted on every training row, held-out fold included (a leak)
    leaky = predefined_cv(make_pipeline(*filters, clone(estimator)), StandardScaler().fit_transform(X), y, folds)
    assert scores != pytest.approx(leaky, abs=1e-6)


@FOLD_CASES
@pytest.mark.parametrize("top_k_genes", [None, 100])
def test_folds_choose_genes_on_each_folds_training_rows_not_the_held_out_fold(
    tiny_dataset: PreparedDataset, name: str, params: dict, estimator, top_k_genes: int | None
) -> None:
    """Genes below the variance threshold except in one fold's rows: the filter fitted with that fold held
    out drops them, one fitted on every training row (a leak) keeps them and scores that fold differently."""
    folds = np.arange(len(tiny_dataset.y_train)) % 3
    X = np.array(tiny_dataset.X_train_unfiltered)
    noisy, rng = np.arange(20), np.random.default_rng(0)
    assert tiny_dataset.settings["min_gene_variance"] == 0.05
    X[:, noisy] = rng.normal(1.0, 0.1, size=(len(X), noisy.size))  # variance 0.01: filtered out ...
    X[np.ix_(folds == 0, noisy)] = rng.normal(1.0, 5.0, size=(np.sum(folds == 0), noisy.size))  # ... but for fold 0
    settings = {**tiny_dataset.settings, "top_k_genes": top_k_genes}
    data = dataclasses.replace(tiny_dataset, X_train_unfiltered=X, folds=folds, settings=settings)
    scores = fold_scores(name, data, params)
    y, filters = data.y_train, gene_filter_steps(settings)
    independent = predefined_cv(make_pipeline(*filters, StandardScaler(), clone(estimator)), X, y, folds)
    assert scores == pytest.approx(independent, abs=1e-12)
    # the filter fitted once on every training row (a leak) keeps the noisy genes for the held-out fold 0
    chosen = make_pipeline(*filters).fit(X, y)
    assert set(noisy) <= set(chosen.transform(np.arange(X.shape[1], dtype=X.dtype)[None, :])[0])  # kept columns
    leaky = predefined_cv(make_pipeline(StandardScaler(), clone(estimator)), chosen.transform(X), y, folds)
    assert scores[0] != pytest.approx(leaky[0], abs=1e-6)


def test_folds_on_a_data_set_without_the_unfiltered_training_split_fail_clearly(tiny_dataset: PreparedDataset) -> None:
    data = dataclasses.replace(tiny_dataset, X_train_unfiltered=None)
    with pytest.raises(ValueError, match="has no X_train_unfiltered; prepare it again"):
        fit("knn", data, {"fidelity": "folds", "fidelity_steps": 2})
    # classifiers on autoencoder codes cross-validate the codes, not genes
    _, steps = fit("knn_on_embeddings", data, {**SMALL_AE, "fidelity": "folds", "fidelity_steps": 2})
    assert [metrics["fold"] for _, metrics in steps] == [0.0, 1.0]


@pytest.mark.parametrize("name", ["svc_on_embeddings", "knn_on_embeddings"])
def test_classifier_on_autoencoder_embeddings(tiny_dataset: PreparedDataset, name: str) -> None:
    model, steps = fit(name, tiny_dataset, {**SMALL_AE, "fidelity": "subsets", "fidelity_steps": 2})
    assert len(steps) == 2
    assert model.embed(tiny_dataset.X_val).shape == (len(tiny_dataset.y_val), 16)
    assert model.n_parameters_ > 0
    assert model.evaluate(tiny_dataset, "val")["val_balanced_accuracy"] > 1.5 / tiny_dataset.n_classes


@pytest.mark.parametrize(
    ("name", "params"), [("random_forest", {"n_estimators": 20}), ("kpca_svc", {}), ("svc_on_embeddings", SMALL_AE)]
)
def test_save_and_load_give_identical_predictions(tiny_dataset: PreparedDataset, tmp_path, name: str, params: dict) -> None:
    model, _ = fit(name, tiny_dataset, params)
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name, device="cpu")
    assert type(loaded) is type(model) and loaded.params == model.params
    assert np.array_equal(loaded.predict(tiny_dataset.X_test), model.predict(tiny_dataset.X_test))


def test_load_model_of_a_missing_directory_fails_clearly(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model.json"):
        load_model(tmp_path / "nothing")


def test_logistic_regression_solver_follows_the_penalty_or_the_choice(tiny_dataset: PreparedDataset) -> None:
    assert fit("logistic_regression", tiny_dataset)[0].estimator_.solver == "lbfgs"  # auto, l1_ratio = 0
    assert fit("logistic_regression", tiny_dataset, {"l1_ratio": 0.5, "C": 1.0})[0].estimator_.solver == "saga"
    saga, _ = fit("logistic_regression", tiny_dataset, {"solver": "saga", "max_iter": 50, "tol": 1e-3})
    assert saga.estimator_.solver == "saga" and saga.estimator_.tol == 1e-3
    with pytest.raises(ValueError, match="solver='lbfgs' fits only the L2 penalty"):
        fit("logistic_regression", tiny_dataset, {"solver": "lbfgs", "l1_ratio": 0.5})
