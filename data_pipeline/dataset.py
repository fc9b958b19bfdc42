"""The prepared data set: the one object every model and study worker reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class PreparedDataset:
    """Normalised, split expression data with its labels and provenance.

    Arrays are float32 features (samples x genes, z-scored with training-split
    statistics) and int64 tissue indices; when loaded from the cache they are
    read-only memory maps shared by every worker on the machine.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    tissues: list[str]
    """Tissue name for each class index (stable, sorted)."""
    gene_names: list[str]
    sample_ids: dict[str, list[str]]
    """Sample (ModelID) per row, for each split."""
    fingerprint: str
    """Hash of the input files and the settings that produced this data set."""
    sample_info: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    """Per split, per metadata column (e.g. OncotreePrimaryDisease, Age, Sex): one value per row."""
    folds: np.ndarray | None = None
    """Optional stratified k-fold assignment (fold index per training row)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The data settings that produced this data set (JSON-serialisable)."""
    directory: Path | None = None
    """Cache directory this data set was loaded from, if any."""
    feature_mean: np.ndarray | None = None
    """Per-gene mean of the training split (before z-scoring); val/test never contribute."""
    feature_std: np.ndarray | None = None
    """Per-gene standard deviation of the training split (before z-scoring)."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where the data came from: source, layout, input files and their hashes, counts dropped."""
    X_train_unfiltered: np.ndarray | None = None
    """The training rows before the gene filter and z-scoring (log-transformed, every gene that varies
    on the training split): CV folds refit the filter and the scaling on their own rows from it."""

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.tissues)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)`` for ``train``, ``val``, ``test`` or ``train+val``."""
        if name == "train+val":
            return (
                np.concatenate([self.X_train, self.X_val]),
                np.concatenate([self.y_train, self.y_val]),
            )
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS + ('train+val',)}")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")
