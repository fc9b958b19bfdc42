"""Models that studies tune: PyTorch autoencoder/classifiers and scikit-learn baselines.

Import from here: ``build_model``, ``load_model``, ``get_spec``, ``available_models``,
``estimate_memory``; every model is a :class:`TissueModel` (``models/base.py``), and the
model classes live in their own modules.
"""

from models.base import TissueModel
from models.errors import DeviceOutOfMemory, NoEmbeddingError, TrainingDiverged, UnknownParameterError
from models.loading import load_model
from models.memory import MemoryEstimate, estimate_memory
from models.networks import count_parameters
from models.registry import ModelSpec, available_models, build_model, get_spec

__all__ = [
    "DeviceOutOfMemory",
    "MemoryEstimate",
    "ModelSpec",
    "NoEmbeddingError",
    "TissueModel",
    "TrainingDiverged",
    "UnknownParameterError",
    "available_models",
    "build_model",
    "count_parameters",
    "estimate_memory",
    "get_spec",
    "load_model",
]
