"""Training-set fidelities for scikit-learn models: growing stratified subsets and CV folds."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

FOLD_SEED = 0
"""Folds do not depend on a trial's seed, so every trial of a study scores the same folds."""

FOLDS = "folds"
"""The ``fidelity`` value of cross-validated models: their objective value is the mean fold score."""


def cross_validates(params: Mapping[str, Any]) -> bool:
    """Whether a model with ``params`` scores itself by k-fold CV on the training split (``fidelity = "folds"``)."""
    return params.get("fidelity") == FOLDS


def nested_stratified_subsets(y: np.ndarray, n_steps: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``n_steps`` nested subsets of ``y``, fractions 1/n ... n/n, each class in each.

    Every subset keeps each class's share (rounded up, at least one row), and each
    subset contains the previous one; the last is every row.
    """
    if n_steps < 1:
        raise ValueError(f"fidelity_steps={n_steps} must be >= 1")
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)]
    subsets = []
    for step in range(1, n_steps + 1):
        fraction = step / n_steps
        rows = [rows_of_class[: max(1, math.ceil(fraction * len(rows_of_class)))] for rows_of_class in per_class]
        subsets.append(np.sort(np.concatenate(rows)))
    return subsets


def stratified_folds(y: np.ndarray, n_folds: int, folds: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(fit_rows, held_out_rows)`` per fold: the data set's own assignment when given, else StratifiedKFold."""
    if folds is not None:
        if len(folds) != len(y):
            raise ValueError(f"fold assignment has {len(folds)} rows, the split has {len(y)}")
        return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]
    if n_folds < 2:
        raise ValueError(f"fidelity='folds' needs fidelity_steps >= 2, got {n_folds}")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=FOLD_SEED)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(splitter.split(np.zeros(len(y)), y))
