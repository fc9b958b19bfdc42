"""Classification metrics, computed with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, prefix: str) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro-F1 keyed ``{prefix}_accuracy`` etc.

    Balanced accuracy and macro-F1 average over the classes present in ``y_true``
    (and, for F1, predicted), as scikit-learn does.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    if y_true.size == 0:
        raise ValueError(f"no samples to score for {prefix!r}")
    if not (np.issubdtype(y_true.dtype, np.integer) and np.issubdtype(y_pred.dtype, np.integer)):
        return {
            f"{prefix}_accuracy": float(accuracy_score(y_true, y_pred)),
            f"{prefix}_balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            f"{prefix}_macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        }
    # integer labels (every model's tissue indices): the same numbers from one confusion count, without
    # scikit-learn's input checks, which cost more than a small network's epoch (a torch model scores every epoch)
    true_labels = np.unique(y_true)
    labels = np.union1d(true_labels, y_pred)
    t, p = np.searchsorted(labels, y_true), np.searchsorted(labels, y_pred)
    counts = np.bincount(t * labels.size + p, minlength=labels.size**2).reshape(labels.size, labels.size)
    hits = np.diag(counts).astype(np.float64)
    support, predicted = counts.sum(axis=1).astype(np.float64), counts.sum(axis=0).astype(np.float64)
    present = np.isin(labels, true_labels)
    f1_denominator = support + predicted
    f1 = np.divide(2 * hits, f1_denominator, out=np.zeros_like(hits), where=f1_denominator > 0)
    return {
        f"{prefix}_accuracy": float(hits.sum() / y_true.size),
        f"{prefix}_balanced_accuracy": float(np.mean(hits[present] / support[present])),
        f"{prefix}_macro_f1": float(f1.mean()),
    }


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, tissues: Sequence[str]
) -> dict[str, Any]:
    """Per-tissue precision/recall/F1/support and the confusion matrix (rows: true, columns: predicted).

    Every tissue of ``tissues`` (class index = position) appears, with support 0
    where a split holds none of it.
    """
    labels = list(range(len(tissues)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_tissue = {
        tissue: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, tissue in enumerate(tissues)
    }
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "tissues": list(tissues),
        "per_tissue": per_tissue,
        "confusion_matrix": matrix.astype(int).tolist(),
        **classification_metrics(y_true, y_pred, prefix="overall"),
    }
