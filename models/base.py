"""The contract every model honours, deep or classic.

A model is built from a plain parameter mapping, fitted on a
:class:`~data_pipeline.dataset.PreparedDataset`, and evaluated on any split.
Training code never imports the tuner: progress is reported through a plain
callback, which may raise (a study raises ``optuna.TrialPruned`` from it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from data_pipeline.dataset import PreparedDataset

StepCallback = Callable[[int, Mapping[str, float]], None]
"""Called after each training step (epoch for torch models, fidelity step for
scikit-learn models) with the 1-based step number and the metrics measured at that
step, keyed like ``val_balanced_accuracy`` / ``val_loss`` / ``train_loss``."""


@runtime_checkable
class TissueModel(Protocol):
    """What studies, ``hpo train`` and export rely on.

    After ``fit``: ``history_`` (list of per-step metric dicts), ``train_seconds_``,
    ``n_steps_`` and ``n_parameters_`` (0 where it does not apply) are set.
    """

    params: dict[str, Any]

    def fit(
        self,
        data: PreparedDataset,
        *,
        train_split: str = "train",
        on_step: StepCallback | None = None,
    ) -> "TissueModel": ...

    def evaluate(self, data: PreparedDataset, split: str) -> dict[str, float]:
        """Metrics on a split, keyed with the split prefix, e.g. ``val_accuracy``."""
        ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...
