"""``load_model``: any saved model directory, a single model or a fold-average ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.fold_ensemble import ENSEMBLE_NAME, FoldEnsemble
from models.persistence import read_metadata
from models.registry import load_model as load_single_model


def load_model(directory: str | Path, *, device: str = "auto") -> Any:
    """The fitted model saved in ``directory``: a :class:`~models.base.TissueModel` (``model.save``) or a
    :class:`~models.fold_ensemble.FoldEnsemble` (``hpo train --config --retrain-mode fold-average``)."""
    if read_metadata(Path(directory))["name"] == ENSEMBLE_NAME:
        return FoldEnsemble.load(directory, device=device)
    return load_single_model(directory, device=device)
