"""One registry: model name -> how it is built and which parameters (with defaults) it takes.

The metadata (names, families, tasks, defaults, choices, ranges) lives in :mod:`models.specs`, which
imports no PyTorch, and each model class takes its own from there; this module builds and loads the
models (and imports every model class).

Study files, ``hpo train`` and export all go through :func:`build_model`, so a
parameter a model does not take, or a value of the wrong type, fails the same way
everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from models.autoencoder import AutoencoderModel
from models.base import TissueModel
from models.classifier import ClassifierModel, ConvClassifierModel
from models.embeddings import KNNOnEmbeddings, RandomForestOnEmbeddings, SVCOnEmbeddings
from models.persistence import read_metadata
from models.sklearn_models import (
    KernelPCASVCModel,
    KNNModel,
    LogisticRegressionModel,
    RandomForestModel,
    SVCModel,
)
from models.specs import ModelSpec, available_models, get_spec, resolve_model_params
from models.torch_model import TorchModel

__all__ = [
    "ModelSpec", "available_models", "build_model", "get_spec", "load_model",
    "resolve_model_params", "torch_model_class",
]


_MODEL_CLASSES: dict[str, type[TissueModel]] = {
    cls.name: cls
    for cls in (
        AutoencoderModel,
        ClassifierModel,
        ConvClassifierModel,
        SVCModel,
        RandomForestModel,
        KNNModel,
        LogisticRegressionModel,
        KernelPCASVCModel,
        SVCOnEmbeddings,
        KNNOnEmbeddings,
        RandomForestOnEmbeddings,
    )
}


def torch_model_class(name: str) -> type[TorchModel]:
    """The class of PyTorch model ``name`` (its ``build_network`` serves memory estimates)."""
    cls = _MODEL_CLASSES[get_spec(name).name]
    if cls.family != "torch":
        raise ValueError(f"model {name!r} is not a PyTorch model")
    return cast("type[TorchModel]", cls)


def build_model(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    device: str = "auto",
    seed: int = 0,
    num_threads: int | None = None,
) -> TissueModel:
    """An unfitted model ``name`` with ``params`` over its defaults.

    Raises ``ValueError`` for an unknown model or a wrong-typed value and
    :class:`~models.errors.UnknownParameterError` for a parameter the model does not take.
    ``num_threads`` caps the CPU threads the model uses (parallel workers set it).
    """
    resolved = resolve_model_params(name, params)
    return _MODEL_CLASSES[name](resolved, device=device, seed=seed, num_threads=num_threads)


def load_model(directory: str | Path, *, device: str = "auto") -> TissueModel:
    """A fitted model saved with ``model.save(directory)``."""
    meta = read_metadata(Path(directory))
    return _MODEL_CLASSES[get_spec(meta["name"]).name].load(directory, device=device)
