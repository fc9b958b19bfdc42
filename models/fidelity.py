"""Training-set fidelities: growing stratified subsets, CV folds (patient-grouped), and the automatic choice.

Folds keep every model of a patient (``PatientID`` in Model.csv) on one side: a replicate line in the
held-out fold while its twin trains would score memorisation, not generalisation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.specs import AUTO, FOLDS  # the fidelity values (models/specs.py lists each model's choices)

FOLD_SEED = 0
"""Folds do not depend on a trial's seed, so every trial of a study scores the same folds."""

AUTO_MIN_TRAIN_ROWS = 200
"""``fidelity = "auto"`` cross-validates below this many training rows ..."""

AUTO_MIN_VAL_PER_TISSUE = 5.0
"""... or below this many validation samples per tissue (on average): a split that small ranks by chance."""

GROUP_COLUMN = "PatientID"
"""The sample_info column whose equal values must stay on one side of every split and fold."""


def cross_validates(params: Mapping[str, Any]) -> bool:
    """Whether a model with ``params`` scores itself by k-fold CV on the training split (``fidelity = "folds"``)."""
    return params.get("fidelity") == FOLDS


def choose_fidelity(n_train: int, n_val: int, n_tissues: int) -> tuple[str, str]:
    """``(fidelity, reason)`` for ``fidelity = "auto"``: :data:`FOLDS` on a small training split, else ``none``.

    Small: fewer than :data:`AUTO_MIN_TRAIN_ROWS` training rows, or fewer than
    :data:`AUTO_MIN_VAL_PER_TISSUE` validation samples per tissue. ``reason`` is one sentence.
    """
    per_tissue = n_val / max(n_tissues, 1)
    sizes = f"{n_train} training rows, {n_val} validation samples over {n_tissues} tissues ({per_tissue:.1f} per tissue)"
    rule = f"{AUTO_MIN_TRAIN_ROWS} training rows or {AUTO_MIN_VAL_PER_TISSUE:g} validation samples per tissue"
    if n_train < AUTO_MIN_TRAIN_ROWS or per_tissue < AUTO_MIN_VAL_PER_TISSUE:
        return FOLDS, f"{sizes}; fewer than {rule}"
    return "none", f"{sizes}; at least {rule}"


def resolved_fidelity(params: Mapping[str, Any], n_train: int, n_val: int, n_tissues: int) -> str:
    """``params["fidelity"]``, with ``auto`` replaced by :func:`choose_fidelity`'s choice."""
    fidelity = params.get("fidelity", "none")
    return choose_fidelity(n_train, n_val, n_tissues)[0] if fidelity == AUTO else fidelity


def split_groups(sample_info: Mapping[str, Mapping[str, Any]], split: str) -> np.ndarray | None:
    """The patient of each row of ``split`` (``train+val`` concatenates), or None when no patient has two rows.

    Rows without a patient form a group of their own.
    """
    names = ("train", "val") if split == "train+val" else (split,)
    columns = [sample_info.get(name, {}).get(GROUP_COLUMN) for name in names]
    if any(column is None for column in columns):
        return None
    values = [str(v) if v not in (None, "") else "" for column in columns for v in column]
    groups = np.array([v if v else f"<row {i}>" for i, v in enumerate(values)], dtype=object)
    return groups if len(set(groups)) < len(groups) else None


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


def stratified_folds(
    y: np.ndarray, n_folds: int, folds: np.ndarray | None = None, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(fit_rows, held_out_rows)`` per fold: the data set's own assignment when given, else StratifiedKFold.

    With ``groups`` (a patient per row), StratifiedGroupKFold: no group spans two folds.
    """
    if folds is not None:
        if len(folds) != len(y):
            raise ValueError(f"fold assignment has {len(folds)} rows, the split has {len(y)}")
        return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]
    if n_folds < 2:
        raise ValueError(f"fidelity='folds' needs fidelity_steps >= 2, got {n_folds}")
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold  # here: the launcher imports no sklearn

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        if groups is not None:
            if len(groups) != len(y):
                raise ValueError(f"groups have {len(groups)} rows, the split has {len(y)}")
            n_groups = len(set(groups))
            if n_groups < n_folds:
                raise ValueError(f"fidelity='folds' with {n_folds} folds needs as many patients; the split has {n_groups}")
            grouped = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=FOLD_SEED)
            return list(grouped.split(np.zeros(len(y)), y, groups))
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=FOLD_SEED)
        return list(splitter.split(np.zeros(len(y)), y))


def fold_count(
    y_train: np.ndarray, requested: int, groups: np.ndarray | None = None, names: Sequence[str] | None = None,
) -> tuple[int, str]:
    """``(k, reason)``: the CV fold count on this training split and why. ``requested`` folds, at most one per
    training row (patient, when ``groups`` are given: a patient sits in one fold). A tissue needs at least 2
    training rows (patients): then every fold's training part holds it, even where a tissue has fewer rows than
    there are folds (those held-out folds lack it, which the fold scores tolerate). Fewer folds would rank trials on
    smaller training parts and noisier means: on the small-cohort benchmark, 3 folds instead of 5 chose classifier
    trials that retrained up to two test samples worse than the defaults. ``ValueError`` (one line) when a tissue
    has fewer than 2. ``names``: the tissues' names by label (for the reason)."""
    y = np.asarray(y_train)
    labels, counts = np.unique(y, return_counts=True)
    units = len(y)
    if groups is not None:
        groups = np.asarray(groups)
        counts = np.array([len(set(groups[y == label])) for label in labels])
        units = len(set(groups))
    unit = "patients" if groups is not None else "training rows"
    smallest = int(counts.min()) if counts.size else 0
    label = int(labels[int(np.argmin(counts))]) if counts.size else -1
    tissue = names[label] if names is not None and 0 <= label < len(names) else label
    if smallest < 2:
        raise ValueError(f"fidelity='folds' needs at least 2 {unit} per tissue, but tissue {tissue} has {smallest} in "
                         f"the training split; raise [data] min_samples_per_tissue or use fidelity = 'none'")
    k = min(int(requested), units)
    if k < int(requested):
        return k, f"{k} folds, not the {requested} asked: the training split has only {units} {unit}"
    if smallest < k:
        return k, (f"{k} folds as asked: the smallest tissue ({tissue}) has {smallest} {unit} in the training split, "
                   f"so {k - smallest} held-out fold{'s lack' if k - smallest > 1 else ' lacks'} it; every fold trains on it")
    return k, f"{k} folds as asked: the smallest tissue ({tissue}) has {smallest} {unit} in the training split"
