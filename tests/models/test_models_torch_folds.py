"""PyTorch models cross-validated on the training split (``fidelity = "folds"``, models.torch_folds)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from data_pipeline import PreparedDataset
from models import build_model
from models.fidelity import FOLD_SEED, choose_fidelity
from models.torch_folds import best_epoch
from tests.support.models_support import gene_filter_steps, one_torch_thread  # noqa: F401  (autouse)

N_FOLDS, EPOCHS = 3, 4
FOLD_PARAMS = {"fidelity": "folds", "fidelity_steps": N_FOLDS, "max_epochs": EPOCHS, "hidden_dim": 64, "latent_dim": 16}


def test_each_fold_trains_its_own_model_on_genes_and_scaling_refitted_on_its_rows(tiny_dataset: PreparedDataset) -> None:
    steps: list[tuple[int, dict]] = []
    model = build_model("classifier", FOLD_PARAMS, device="cpu", seed=0)
    model.fit(tiny_dataset, on_step=lambda step, metrics: steps.append((step, dict(metrics))))

    # every epoch of every fold, as step fold * max_epochs + epoch
    assert [step for step, _ in steps] == list(range(1, N_FOLDS * EPOCHS + 1))
    assert [(m["fold"], m["epoch"]) for _, m in steps] == [(f, e) for f in range(N_FOLDS) for e in range(1, EPOCHS + 1)]
    assert len(model.fold_results_) == N_FOLDS

    # fold 0 by hand: StratifiedKFold on the training split, filter + scaler fitted on the fold's training rows
    y = np.asarray(tiny_dataset.y_train)
    X_raw = np.asarray(tiny_dataset.X_train_unfiltered)
    fit_rows, held_rows = next(StratifiedKFold(N_FOLDS, shuffle=True, random_state=FOLD_SEED).split(X_raw, y))
    features = make_pipeline(*gene_filter_steps(tiny_dataset.settings), StandardScaler()).fit(X_raw[fit_rows])
    fold = dataclasses.replace(
        tiny_dataset,
        X_train=features.transform(X_raw[fit_rows]).astype(np.float32), y_train=y[fit_rows],
        X_val=features.transform(X_raw[held_rows]).astype(np.float32), y_val=y[held_rows],
    )
    by_hand = build_model("classifier", {**FOLD_PARAMS, "fidelity": "none"}, device="cpu")
    by_hand.fit(fold)
    chosen = best_epoch(list(by_hand.history_), "val_loss", "min")
    for key in ("val_balanced_accuracy", "val_loss"):
        assert model.fold_results_[0][key] == pytest.approx(by_hand.history_[chosen - 1][key], abs=1e-6)
    assert model.fold_results_[0]["best_epoch"] == chosen

    # the best epoch is the CV curve's: the epoch whose val_loss, averaged over the folds, is lowest
    curve = [np.mean([m["val_loss"] for _, m in steps if m["epoch"] == e]) for e in range(1, EPOCHS + 1)]
    assert model.best_epoch_ == int(np.argmin(curve)) + 1
    assert 1 <= model.retrain_epochs_ <= EPOCHS
    assert [row["val_loss"] for row in model.history_] == pytest.approx(curve)
    # the fitted model is the one trained on the whole training split
    assert model.n_features_in_ == tiny_dataset.n_features
    assert model.predict(tiny_dataset.X_test).shape == (len(tiny_dataset.y_test),)


def test_autoencoder_folds_score_reconstruction_on_each_held_out_fold(tiny_dataset: PreparedDataset) -> None:
    model = build_model("autoencoder", {**FOLD_PARAMS, "n_layers": 1}, device="cpu", seed=0)
    model.fit(tiny_dataset)
    scores = [row["val_reconstruction_mse"] for row in model.fold_results_]
    assert len(scores) == N_FOLDS and all(0 < s < 2 for s in scores)
    assert model.evaluate(tiny_dataset, "val")["val_reconstruction_mse"] > 0


def test_a_retrain_on_train_plus_val_does_not_cross_validate(tiny_dataset: PreparedDataset) -> None:
    model = build_model("classifier", FOLD_PARAMS, device="cpu", seed=0)
    model.fit(tiny_dataset, train_split="train+val")
    assert model.fold_results_ == () and model.n_steps_ == EPOCHS


def test_auto_fidelity_cross_validates_small_training_splits_only() -> None:
    assert choose_fidelity(126, 27, 6)[0] == "folds"  # fewer than 200 training rows
    assert choose_fidelity(980, 30, 39)[0] == "folds"  # < 5 validation samples per tissue
    chosen, reason = choose_fidelity(980, 210, 39)
    assert chosen == "none" and "210 validation samples over 39 tissues (5.4 per tissue)" in reason
    chosen, reason = choose_fidelity(42, 9, 8)
    assert chosen == "folds" and reason.startswith("42 training rows, 9 validation samples over 8 tissues")
    assert reason.endswith("; fewer than 200 training rows or 5 validation samples per tissue")


def test_auto_fidelity_makes_the_model_cross_validate_on_a_small_split(tiny_dataset: PreparedDataset) -> None:
    model = build_model("classifier", {**FOLD_PARAMS, "fidelity": "auto", "max_epochs": 2}, device="cpu")
    assert model.cross_validates_on(tiny_dataset, "train")  # 126 training rows
    assert not model.cross_validates_on(tiny_dataset, "train+val")


def test_the_cv_curve_carries_a_fold_that_stopped_early_forward() -> None:
    from models.torch_folds import cv_curve

    long = [{"val_loss": v} for v in (3.0, 2.0, 1.0, 1.5)]
    short = [{"val_loss": v} for v in (2.0, 1.0)]  # stopped after epoch 2
    curve = cv_curve([long, short])
    assert [row["val_loss"] for row in curve] == [2.5, 1.5, 1.0, 1.25]
    assert [row["epoch"] for row in curve] == [1.0, 2.0, 3.0, 4.0]
    assert best_epoch(curve, "val_loss", "min") == 3
