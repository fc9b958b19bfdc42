"""Classification metrics, computed with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
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
            f"{prefix}_balanced_accuracy": balanced_accuracy(y_true, y_pred),
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


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean recall over the classes present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``),
    without its warning when a prediction names a class absent from ``y_true`` (every small fold does)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == label] == label) for label in np.unique(y_true)]))


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


TIE_BREAK_KEY = "tie_break_loss"
"""Name of the smooth secondary ranking loss, in step metrics (per CV fold) and as a trial user attribute."""
_EPS = 1e-15


def tie_break_loss(
    y_true: np.ndarray,
    *,
    proba: np.ndarray | None = None,
    decision: np.ndarray | None = None,
    y_pred: np.ndarray | None = None,
    classes: Sequence[int] | None = None,
) -> float:
    """A smooth loss that separates configurations an accuracy-type metric ties (lower is better).

    With ``proba`` (rows: samples, columns: ``classes``, default ``0..k-1``): the log-loss, a true class
    missing from ``classes`` scoring probability ``1e-15``. Else with ``decision`` (one-vs-rest scores,
    or one column/1-D for two classes): the negative mean margin, the true class's score minus the best
    other one. Else ``1 - accuracy`` of ``y_pred``. For a PyTorch classifier pass the softmax of its
    logits as ``proba``: that is its (unweighted) validation cross-entropy.
    """
    y_true = np.asarray(y_true)
    if y_true.size == 0:
        raise ValueError("no samples for the tie-break loss")
    if proba is not None:
        proba = np.asarray(proba, dtype=float)
        index = _class_index(y_true, proba.shape[1], classes)
        picked = np.where(index >= 0, proba[np.arange(len(y_true)), np.clip(index, 0, None)], _EPS)
        return float(-np.mean(np.log(np.clip(picked, _EPS, 1.0))))
    if decision is not None:
        scores = np.asarray(decision, dtype=float)
        if scores.ndim == 1:  # two classes: the score of the second, the first's is its negative
            scores = np.column_stack([-scores, scores])
        index = _class_index(y_true, scores.shape[1], classes)
        rows = np.arange(len(y_true))
        own = np.where(index >= 0, scores[rows, np.clip(index, 0, None)], scores.min(axis=1))
        others = scores.copy()
        others[rows[index >= 0], index[index >= 0]] = -np.inf
        return float(-np.mean(own - others.max(axis=1)))
    if y_pred is None:
        raise ValueError("tie_break_loss needs proba, decision or y_pred")
    return float(1.0 - np.mean(np.asarray(y_pred) == y_true))


def _class_index(y_true: np.ndarray, n_columns: int, classes: Sequence[int] | None) -> np.ndarray:
    """Column of each sample's true class (-1: the model never saw that class)."""
    labels = list(range(n_columns)) if classes is None else [int(c) for c in classes]
    position = {label: column for column, label in enumerate(labels)}
    return np.array([position.get(int(y), -1) for y in y_true], dtype=int)


def estimator_tie_break_loss(estimator: Any, X: np.ndarray, y_true: np.ndarray) -> float:
    """:func:`tie_break_loss` of a fitted scikit-learn estimator: probabilities, else decision scores, else labels."""
    classes = getattr(estimator, "classes_", None)
    for method, keyword in (("predict_proba", "proba"), ("decision_function", "decision")):
        try:
            scores = getattr(estimator, method)(X)
        except AttributeError:  # SVC without probability=True; a Pipeline whose last step lacks it
            continue
        return tie_break_loss(y_true, classes=classes, **{keyword: scores})
    return tie_break_loss(y_true, y_pred=estimator.predict(X))


CHANCE_MARGIN = 0.02
"""How far above chance a trial must end not to be flagged as at chance (:func:`at_chance`)."""


def chance_level(metric: str, n_classes: int) -> float | None:
    """The value of ``metric`` for a classifier that guesses (1/n_classes for accuracy, balanced accuracy
    and, as a bound, macro-F1); None for metrics without one (losses, reconstruction)."""
    if n_classes < 2 or not metric.endswith(("_accuracy", "_balanced_accuracy", "_macro_f1")):
        return None
    return 1.0 / n_classes


def at_chance(metric: str, value: float, n_classes: int, margin: float = CHANCE_MARGIN) -> bool:
    """Whether ``value`` of ``metric`` is no better than guessing: at most chance level plus ``margin``."""
    level = chance_level(metric, n_classes)
    return level is not None and value <= level + margin
