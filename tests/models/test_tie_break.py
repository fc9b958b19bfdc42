"""The smooth tie-break loss, a silent balanced accuracy, chance levels, and early stopping on a flat accuracy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, log_loss
from sklearn.svm import SVC

from models.metrics import at_chance, balanced_accuracy, chance_level, estimator_tie_break_loss, tie_break_loss
from models.training import TrainingSettings, train_epochs


def test_log_loss_margin_and_error_rate():
    y = np.array([0, 1, 2, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    assert tie_break_loss(y, proba=proba) == pytest.approx(log_loss(y, proba))
    # a class the model never saw (columns are classes 0 and 2 only) costs as much as probability 1e-15
    assert tie_break_loss(np.array([1]), proba=np.array([[0.5, 0.5]]), classes=[0, 2]) == pytest.approx(-math.log(1e-15))
    decision = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    assert tie_break_loss(np.array([0, 1]), decision=decision) == pytest.approx(-np.mean([1.5, -2.0]))
    assert tie_break_loss(np.array([0, 1]), decision=np.array([-1.0, 0.5])) == pytest.approx(-np.mean([1.0, 0.5]) * 2)
    assert tie_break_loss(y, y_pred=np.array([0, 1, 0, 0])) == 0.5


def test_equal_accuracy_different_confidence_is_told_apart():
    y = np.array([0, 1])
    sure, unsure = np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[0.55, 0.45], [0.45, 0.55]])
    assert tie_break_loss(y, proba=sure) < tie_break_loss(y, proba=unsure)


def test_estimators_use_probabilities_else_decision_scores():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    logistic = LogisticRegression().fit(X, y)
    assert estimator_tie_break_loss(logistic, X, y) == pytest.approx(log_loss(y, logistic.predict_proba(X)))
    svc = SVC(kernel="linear").fit(X, y)
    assert math.isfinite(estimator_tie_break_loss(svc, X, y))  # no predict_proba: the margin


def test_balanced_accuracy_is_scikit_learns_without_the_warning():
    y_true, y_pred = np.array([0, 0, 1, 1, 2]), np.array([0, 3, 1, 1, 3])  # 3 never occurs in y_true
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert balanced_accuracy(y_true, y_pred) == pytest.approx(expected)


def test_chance_levels():
    assert chance_level("val_balanced_accuracy", 8) == 0.125 and chance_level("val_loss", 8) is None
    assert at_chance("val_balanced_accuracy", 0.13, 8) and not at_chance("val_balanced_accuracy", 0.3, 8)
    assert not at_chance("val_reconstruction_mse", 0.0, 8)


def test_a_flat_accuracy_with_a_falling_loss_neither_stops_training_nor_picks_the_first_epoch():
    epochs = iter(range(1, 100))

    def validate() -> dict[str, float]:
        epoch = next(epochs)
        return {"val_balanced_accuracy": 0.125, "val_loss": 2.0 - 0.01 * min(epoch, 25)}  # falls until epoch 25

    network = torch.nn.Linear(3, 2)
    X = torch.randn(16, 3)
    outcome = train_epochs(
        network, n_train=16, batch_loss=lambda idx: network(X[idx]).pow(2).mean(), validate=validate,
        settings=TrainingSettings(max_epochs=60, early_stopping_patience=10), device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0), monitor="val_balanced_accuracy", monitor_mode="max",
    )
    assert outcome.best_epoch == 25  # the tied epoch with the lowest validation loss
    assert len(outcome.history) == 35 and outcome.stopped_early  # patience counted from there, not from epoch 1
