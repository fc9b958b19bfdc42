"""The one base every model derives from, deep or classic: :class:`TissueModel`.

A model is a scikit-learn estimator: its constructor stores ``params``, ``device``,
``seed`` and ``num_threads`` unchanged and does nothing else, so ``get_params``,
``set_params`` and ``sklearn.base.clone`` work. It is fitted on a
:class:`~data_pipeline.dataset.PreparedDataset` and evaluated on any split; learned
state ends in ``_`` and has a class-level default until ``fit`` or ``load`` sets it.
What a model is and takes (``family``, ``task``, ``DEFAULTS``, ``CHOICES``,
``VALUE_TYPES``, ``RANGES``) is its spec in :mod:`models.specs`, which a class names
with ``name``; what it can do (``has_embedding``) is declared on its class. Training
code never imports the tuner: progress is reported through a plain callback, which
may raise (a study raises ``optuna.TrialPruned`` from it).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from data_pipeline.dataset import PreparedDataset
from models.errors import NoEmbeddingError
from models.params import Range
from models.persistence import read_metadata, write_metadata
from models.specs import ModelSpec, get_spec

StepCallback = Callable[[int, Mapping[str, float]], None]
"""Called after each training step (epoch for torch models, fidelity step for
scikit-learn models) with the 1-based step number and the metrics measured at that
step, keyed like ``val_balanced_accuracy`` / ``val_loss`` / ``train_loss``."""

Model = TypeVar("Model", bound="TissueModel")
_EMPTY: Mapping[str, Any] = MappingProxyType({})
SPEC_ATTRIBUTES = ("family", "task", "DEFAULTS", "CHOICES", "VALUE_TYPES", "RANGES")
"""The class attributes a concrete model takes from its :class:`~models.specs.ModelSpec`, never declares."""


class TissueModel(BaseEstimator, abc.ABC):
    """What studies, ``hpo train`` and export rely on: fit, evaluate, predict, save, load.

    A concrete subclass declares ``name`` (its spec's, in :mod:`models.specs`, which sets
    :data:`SPEC_ATTRIBUTES`) and ``has_embedding``, implements :meth:`fit`, :meth:`evaluate`,
    :meth:`predict` and the persistence hooks :meth:`_save_state`/:meth:`_load_state`,
    and never override ``__init__``.
    """

    # -- what the model is: ``name`` declared by each concrete class, the rest from its spec ------
    name: ClassVar[str]
    """Registry name, e.g. ``classifier``; ``model.json`` records it."""
    spec: ClassVar[ModelSpec]
    """``get_spec(name)``; the attributes below up to ``RANGES`` are its fields."""
    family: ClassVar[str]
    """``torch`` or ``sklearn``."""
    task: ClassVar[str]
    """``classification`` (predict returns tissue indices) or ``reconstruction``."""
    has_embedding: ClassVar[bool] = False
    """Whether :meth:`embed` returns a representation of the rows (else it raises)."""
    DEFAULTS: ClassVar[Mapping[str, Any]]
    CHOICES: ClassVar[Mapping[str, tuple[Any, ...]]] = _EMPTY
    VALUE_TYPES: ClassVar[Mapping[str, tuple[type, ...]]] = _EMPTY
    RANGES: ClassVar[Mapping[str, Range]] = _EMPTY

    # -- fitted state: these defaults until fit() or load() sets it ------------------------------
    history_: Sequence[Mapping[str, float]] = ()
    """Per-step metrics, as the step callback saw them."""
    train_seconds_: float = 0.0
    n_steps_: int = 0
    n_parameters_: int = 0
    """Trainable network size (0 for models without a network)."""
    best_epoch_: int = 0
    """The epoch whose weights early stopping kept (0: no early stopping)."""
    retrain_epochs_: int = 0
    """Epochs a retrain on train+val should run (0: not measured)."""
    device_: str = "cpu"
    """The device the model was fitted or loaded on."""

    def __init__(
        self, params: Mapping[str, Any], *, device: str = "auto", seed: int = 0, num_threads: int | None = None
    ) -> None:
        self.params = params
        self.device = device
        self.seed = seed
        self.num_threads = num_threads

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            raise TypeError(
                f"{cls.__name__} overrides __init__: a model's constructor only stores its arguments "
                "(get_params/clone rely on it); compute fitted state in fit()"
            )
        if "name" in vars(cls):  # a concrete model: what it is and takes comes from models/specs.py alone
            declared = [attribute for attribute in SPEC_ATTRIBUTES if attribute in vars(cls)]
            if declared:
                raise TypeError(
                    f"{cls.__name__} declares {', '.join(declared)}: they come from its spec (models/specs.py)"
                )
            spec = cls.spec = get_spec(cls.name)
            cls.family, cls.task = spec.family, spec.task
            cls.DEFAULTS, cls.CHOICES, cls.VALUE_TYPES, cls.RANGES = (
                spec.defaults, spec.choices, spec.value_types, spec.ranges
            )

    # -- the estimator contract ------------------------------------------------------------------
    @abc.abstractmethod
    def fit(
        self: Model, data: PreparedDataset, *, train_split: str = "train", on_step: StepCallback | None = None
    ) -> Model:
        """Train on ``train_split``, calling ``on_step`` after each step; returns ``self``."""

    @abc.abstractmethod
    def evaluate(self, data: PreparedDataset, split: str) -> dict[str, float]:
        """Metrics on a split, keyed with the split prefix, e.g. ``val_accuracy``."""

    @abc.abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Tissue indices (classification) or reconstructions (reconstruction) of the rows of ``X``."""

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The representation of each row of ``X`` (``n_rows x dim``); only where ``has_embedding``."""
        raise NoEmbeddingError(
            f"{self.name} has no embedding: only autoencoders, deep classifiers and *_on_embeddings models have a "
            "latent space"
        )

    # -- persistence: one template, two hooks ---------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the fitted state (:meth:`_save_state`), then ``model.json``; returns ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fields = self._save_state(directory)
        write_metadata(
            directory, name=self.name, params=dict(self.params), seed=self.seed, n_steps=self.n_steps_, **fields
        )
        return directory

    @classmethod
    def load(cls: type[Model], directory: str | Path, *, device: str = "auto") -> Model:
        """The fitted model that :meth:`save` wrote into ``directory``, on ``device``."""
        directory = Path(directory)
        meta = read_metadata(directory)
        if meta["name"] != cls.name:
            raise ValueError(f"{directory} holds a {meta['name']!r} model, not {cls.name!r}")
        model = cls(meta["params"], device=device, seed=meta["seed"])
        model.n_steps_ = int(meta.get("n_steps", 0))
        model._load_state(directory, meta)
        return model

    @abc.abstractmethod
    def _save_state(self, directory: Path) -> Mapping[str, Any]:
        """Write the fitted state's files into ``directory``; return the extra ``model.json`` fields it needs.

        Raises ``RuntimeError`` on an unfitted model.
        """

    @abc.abstractmethod
    def _load_state(self, directory: Path, meta: Mapping[str, Any]) -> None:
        """Restore the fitted state from ``directory`` and its ``model.json`` record ``meta``."""
