"""One registry: model name -> how it is built and which parameters (with defaults) it takes.

Study files, ``hpo train`` and export all go through :func:`build_model`, so a
parameter a model does not take, or a value of the wrong type, fails the same way
everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from models.autoencoder import AutoencoderModel
from models.base import TissueModel
from models.classifier import ClassifierModel, ConvClassifierModel
from models.embeddings import KNNOnEmbeddings, RandomForestOnEmbeddings, SVCOnEmbeddings
from models.params import Range, resolve_params
from models.persistence import read_metadata
from models.sklearn_models import (
    KernelPCASVCModel,
    KNNModel,
    LogisticRegressionModel,
    RandomForestModel,
    SVCModel,
)
from models.torch_model import TorchModel


@dataclass(frozen=True)
class ModelSpec:
    """What a study file may say about a model: its name, kind and every parameter with its default."""

    name: str
    family: str
    """``torch`` or ``sklearn``."""
    task: str
    """``classification`` or ``reconstruction``."""
    defaults: Mapping[str, Any]
    description: str
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Allowed values of the string-valued parameters."""
    value_types: Mapping[str, tuple[type, ...]] = field(default_factory=dict)
    """Parameters that take more than their default's type (e.g. SVC ``gamma``: a string or a float)."""
    ranges: Mapping[str, Range] = field(default_factory=dict)
    """Allowed interval of the numeric parameters (e.g. ``dropout`` in [0, 1))."""


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


def _spec(cls: type[TissueModel]) -> ModelSpec:
    return ModelSpec(
        name=cls.name,
        family=cls.family,
        task=cls.task,
        defaults=MappingProxyType(dict(cls.DEFAULTS)),
        description=(cls.__doc__ or "").strip().splitlines()[0],
        choices=MappingProxyType(dict(cls.CHOICES)),
        value_types=MappingProxyType(dict(cls.VALUE_TYPES)),
        ranges=MappingProxyType(dict(cls.RANGES)),
    )


_SPECS: dict[str, ModelSpec] = {name: _spec(cls) for name, cls in _MODEL_CLASSES.items()}


def available_models() -> list[str]:
    """Every model name, in registry order."""
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; unknown names raise ``ValueError`` listing the known ones."""
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(_SPECS)}") from None


def resolve_model_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's defaults overridden by ``params``, every key and type checked."""
    spec = get_spec(name)
    return resolve_params(
        name, spec.defaults, params, choices=spec.choices, value_types=spec.value_types, ranges=spec.ranges
    )


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
