"""Metrics and the per-tissue report."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import classification_metrics, classification_report


def test_classification_metrics_by_hand() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 0])
    metrics = classification_metrics(y_true, y_pred, "val")
    assert metrics["val_accuracy"] == pytest.approx(4 / 6)
    assert metrics["val_balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    f1_0 = 2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)
    f1_1 = 2 * (1 / 2) * (1 / 2) / 1
    assert metrics["val_macro_f1"] == pytest.approx((f1_0 + f1_1) / 2)


def test_classification_metrics_rejects_mismatched_or_empty_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(np.array([0, 1]), np.array([0]), "val")
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics(np.array([]), np.array([]), "val")


def test_report_lists_every_tissue_and_the_confusion_matrix() -> None:
    tissues = ["Bone", "Lung", "Skin"]
    report = classification_report(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), tissues)
    assert report["tissues"] == tissues
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert report["per_tissue"]["Lung"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2}
    assert report["per_tissue"]["Skin"]["support"] == 0  # absent from the split, still listed
    assert report["overall_accuracy"] == 0.75


def test_integer_label_metrics_equal_scikit_learns_on_random_labellings() -> None:
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    rng = np.random.default_rng(7)
    for _ in range(300):
        n, k = int(rng.integers(1, 30)), int(rng.integers(1, 7))
        y_true = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k + 2, n))  # classes absent from y_true too
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = [accuracy_score(y_true, y_pred), balanced_accuracy_score(y_true, y_pred),
                        f1_score(y_true, y_pred, average="macro", zero_division=0)]
        assert list(classification_metrics(y_true, y_pred, "val").values()) == pytest.approx(expected, abs=1e-12)
