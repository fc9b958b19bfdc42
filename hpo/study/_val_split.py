"""Whether a validation split is large enough to rank configurations by its score.

A study ranks its trials by one number measured on the validation split. On a few samples that
number takes few values (accuracy moves in steps of 1/n; a tissue with one or two validation
samples has a recall of 0, 0.5 or 1), so many configurations tie and the "best" one is chosen
by chance. :func:`small_val_split_warning` says so in one line; :func:`small_cv_warning` says the same of a
cross-validated study, whose mean fold score is measured on the training rows (each scored once) and whose
folds each train on a part of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_VAL_SAMPLES = 50
"""Below this, accuracy moves in steps of more than 2 points and its binomial standard error
at 0.8 is above 0.056: configurations less than ~0.1 apart are not told apart, and ties are common."""

MIN_VAL_SAMPLES_PER_TISSUE = 3
"""Below this many validation samples per tissue on average, balanced accuracy and macro-F1 average
per-tissue scores that take only a few values each."""


def small_val_split_warning(n_val: int, n_tissues: int, *, can_cross_validate: bool = False) -> str | None:
    """One line when ``n_val`` validation samples over ``n_tissues`` tissues are too few to rank trials, else None.

    Too few: fewer than :data:`MIN_VAL_SAMPLES`, or fewer than :data:`MIN_VAL_SAMPLES_PER_TISSUE`
    per tissue. ``can_cross_validate`` (scikit-learn models) adds ``fidelity = "folds"`` to the advice.
    """
    if n_val >= MIN_VAL_SAMPLES and n_val >= MIN_VAL_SAMPLES_PER_TISSUE * n_tissues:
        return None
    advice = 'fidelity = "folds" or a larger val_fraction' if can_cross_validate else "a larger val_fraction"
    return f"validation split has {n_val} samples over {n_tissues} tissues: ties are likely; consider {advice}"


def small_cv_warning(y_train: Sequence[int], n_folds: int, n_tissues: int) -> str | None:
    """One line when k-fold CV on ``y_train`` cannot rank trials well, else None.

    Too few: fewer than :data:`MIN_VAL_SAMPLES` training rows in all (the mean fold score moves in
    steps of ``1 / n``), or a tissue with fewer than :data:`MIN_VAL_SAMPLES_PER_TISSUE` training rows
    per fold (its rows in a fold's training part: ``count * (k - 1) / k``; its held-out rows are fewer still).
    """
    counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=n_tissues)
    n_train = int(counts.sum())
    k = max(int(n_folds), 2)
    smallest = int(counts.min()) if counts.size else 0
    per_fold = smallest * (k - 1) / k
    if n_train >= MIN_VAL_SAMPLES and per_fold >= MIN_VAL_SAMPLES_PER_TISSUE:
        return None
    return (
        f"{k}-fold CV on {n_train} training samples over {n_tissues} tissues: each fold trains on "
        f"{per_fold:.1f} to {counts.max() * (k - 1) / k:.1f} rows per tissue and the mean fold score moves in "
        f"steps of {1 / max(n_train, 1):.3f}; ties are likely; consider more samples or fewer tissues"
    )
