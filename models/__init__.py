"""Models that studies tune: PyTorch autoencoder/classifiers and scikit-learn baselines.

Import from here: ``build_model``, ``load_model``, ``get_spec``, ``available_models``,
``estimate_memory``; every model is a :class:`TissueModel` (``models/base.py``), and the
model classes live in their own modules.

Names load on first use: ``get_spec`` and ``available_models`` (:mod:`models.specs`) and the errors
import neither PyTorch nor scikit-learn, so a caller that only reads model metadata stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_OWNERS = {
    "DeviceOutOfMemory": "models.errors",
    "MemoryEstimate": "models.memory",
    "ModelSpec": "models.specs",
    "NoEmbeddingError": "models.errors",
    "TissueModel": "models.base",
    "TrainingDiverged": "models.errors",
    "UnknownParameterError": "models.errors",
    "available_models": "models.specs",
    "build_model": "models.registry",
    "count_parameters": "models.networks",
    "estimate_memory": "models.memory",
    "get_spec": "models.specs",
    "load_model": "models.loading",
}

__all__ = sorted(_OWNERS)


def __getattr__(name: str) -> Any:
    if name not in _OWNERS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_OWNERS[name]), name)
    globals()[name] = value  # the next access skips __getattr__
    return value


def __dir__() -> list[str]:
    return list(__all__)
