"""What every model is, without building one: names, families, tasks, parameters with defaults, choices, ranges.

The one source of the models' metadata. Importing this module loads neither PyTorch nor scikit-learn
(nor numpy), so that study-file validation, the launcher of ``hpo run`` and ``hpo export`` start fast
(issue 21). :mod:`models.registry` builds the models; each model class takes its ``family``, ``task``,
``DEFAULTS``, ``CHOICES``, ``VALUE_TYPES`` and ``RANGES`` from its spec here (:class:`models.base.TissueModel`).
The parameter groups the models share (encoder, training, loss, fidelity) are defined once below and
composed per model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from models.params import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, Range, resolve_params


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


# -- fidelity: how a model scores itself ------------------------------------------------------------
FOLDS = "folds"
"""The ``fidelity`` value of cross-validated models: their objective value is the mean fold score."""

AUTO = "auto"
"""The ``fidelity`` value that picks :data:`FOLDS` on a small training split, else one validation split."""

TORCH_FIDELITY_DEFAULTS: dict[str, Any] = {"fidelity": "none", "fidelity_steps": 5}
TORCH_FIDELITY_CHOICES: dict[str, tuple[str, ...]] = {"fidelity": ("none", FOLDS, AUTO)}
"""PyTorch models: one validation split (``none``), k-fold CV on the training split, or the automatic choice."""
FOLD_RANGES: dict[str, Range] = {"fidelity_steps": Range(2)}
"""A PyTorch model cross-validates over at least two folds."""

FIDELITY_DEFAULTS: dict[str, Any] = {"fidelity": "none", "fidelity_steps": 3}
FIDELITY_CHOICES: dict[str, tuple[str, ...]] = {"fidelity": ("none", "subsets", FOLDS)}
FIDELITY_RANGES: dict[str, Range] = {"fidelity_steps": AT_LEAST_1}
"""scikit-learn models: one fit, nested training subsets or k-fold CV, in ``fidelity_steps`` steps."""


# -- PyTorch models: encoder, training loop, loss ---------------------------------------------------
ACTIVATION_NAMES = ("relu", "gelu", "silu", "leaky_relu", "elu", "tanh")
"""The ``activation`` values; :data:`models.networks.ACTIVATIONS` maps each to its module."""

ENCODER_DEFAULTS: dict[str, Any] = {
    "n_layers": 1,
    "hidden_dim": 1024,
    "width_decay": 0.5,
    "hidden_sizes": [],
    "latent_dim": 512,
    "activation": "relu",
    "batch_norm": True,
    "dropout": 0.0,
    "input_noise": 0.0,
}
ENCODER_CHOICES: dict[str, tuple[str, ...]] = {"activation": ACTIVATION_NAMES}
ENCODER_RANGES: dict[str, Range] = {
    "n_layers": AT_LEAST_0,
    "hidden_dim": AT_LEAST_1,
    "width_decay": POSITIVE,
    "latent_dim": AT_LEAST_1,
    "dropout": FRACTION,
    "input_noise": AT_LEAST_0,
}
ENCODER_KEYS = tuple(ENCODER_DEFAULTS)


@dataclass(frozen=True)
class TrainingSettings:
    """The training knobs every PyTorch model takes, with their defaults (ranges: :data:`TRAINING_RANGES`)."""

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    scheduler: str = "cosine"
    step_size: int = 10
    gamma: float = 0.5
    plateau_patience: int = 3
    batch_size: int = 32
    max_epochs: int = 50
    """The epoch budget: the loop's last epoch, and the cosine schedule's ``T_max``."""
    stop_epoch: int = 0
    """Stop after this epoch, the schedule still spread over ``max_epochs`` (0: run ``max_epochs``). A retrain
    on train+val stops at the trial's chosen epoch with the trial's learning rate at every epoch."""
    early_stopping_patience: int = 8
    min_delta: float = 0.0
    grad_clip: float = 1.0
    precision: str = "fp32"

    @classmethod
    def from_params(cls, params: Mapping[str, Any], prefix: str = "") -> "TrainingSettings":
        return cls(**{f.name: params[prefix + f.name] for f in dataclasses.fields(cls)})


TRAINING_DEFAULTS: dict[str, Any] = dataclasses.asdict(TrainingSettings())
TRAINING_RANGES: dict[str, Range] = {
    "lr": POSITIVE,
    "weight_decay": AT_LEAST_0,
    "momentum": FRACTION,
    "step_size": AT_LEAST_1,
    "gamma": Range(0, 1, low_open=True),
    "plateau_patience": AT_LEAST_0,
    "batch_size": AT_LEAST_1,
    "max_epochs": AT_LEAST_1,
    "stop_epoch": AT_LEAST_0,
    "early_stopping_patience": AT_LEAST_0,
    "min_delta": AT_LEAST_0,
    "grad_clip": AT_LEAST_0,
}
TRAINING_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adamw", "sgd"),
    "scheduler": ("none", "cosine", "step", "plateau"),
    "precision": ("fp32", "bf16"),
}

CLASS_WEIGHTS = ("none", "balanced")
MONITORS = ("val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1")
LOSS_DEFAULTS: dict[str, Any] = {
    "class_weight": "balanced",
    "label_smoothing": 0.0,
    "l1_penalty": 0.0,
    "monitor": "val_loss",
}
LOSS_CHOICES: dict[str, tuple[str, ...]] = {"class_weight": CLASS_WEIGHTS, "monitor": MONITORS}
HEAD_RANGES: dict[str, Range] = {
    "head_layers": AT_LEAST_0, "head_dim": AT_LEAST_1, "label_smoothing": FRACTION, "l1_penalty": AT_LEAST_0,
}


# -- scikit-learn models ----------------------------------------------------------------------------
SVC_DEFAULTS: dict[str, Any] = {
    "kernel": "rbf", "C": 1.0, "linear_C": 0.0, "gamma": "scale", "degree": 3, "class_weight": "balanced",
}
SVC_CHOICES: dict[str, tuple[str, ...]] = {
    "kernel": ("linear", "rbf", "poly", "sigmoid"),
    "gamma": ("scale", "auto"),
    "class_weight": CLASS_WEIGHTS,
}
SVC_RANGES: dict[str, Range] = {"C": POSITIVE, "linear_C": AT_LEAST_0, "gamma": POSITIVE, "degree": AT_LEAST_1}

AE_INITS = ("random", "pca")
"""Autoencoder ``init``: PyTorch's random initialisation, or the training rows' principal components
(:func:`models.autoencoder.pca_initialise`: a linear autoencoder then starts at PCA's reconstruction)."""

AE_PREFIX = "ae_"
"""The ``*_on_embeddings`` models take the autoencoder's parameters with this prefix (e.g. ``ae_latent_dim``)."""
AE_OVERRIDES: dict[str, Any] = {"max_epochs": 30}
"""Autoencoder defaults that differ in the ``*_on_embeddings`` models: a shorter run, since the classifier follows."""


def _spec(
    *,
    name: str,
    family: str,
    task: str,
    description: str,
    defaults: Mapping[str, Any],
    choices: Mapping[str, tuple[Any, ...]] | None = None,
    value_types: Mapping[str, tuple[type, ...]] | None = None,
    ranges: Mapping[str, Range] | None = None,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        family=family,
        task=task,
        description=description,
        defaults=MappingProxyType(dict(defaults)),
        choices=MappingProxyType(dict(choices or {})),
        value_types=MappingProxyType(dict(value_types or {})),
        ranges=MappingProxyType(dict(ranges or {})),
    )


def _prefixed(mapping: Mapping[str, Any], prefix: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {prefix + key: value for key, value in mapping.items() if key not in skip}


def _on_embeddings(autoencoder: ModelSpec, classifier: ModelSpec) -> ModelSpec:
    """``<classifier>_on_embeddings``: the autoencoder's parameters (prefixed :data:`AE_PREFIX`), the classifier's."""
    return _spec(
        name=f"{classifier.name}_on_embeddings",
        family="sklearn",
        task="classification",
        description=f"{classifier.name} on the latent codes of an autoencoder trained first.",
        defaults={**_prefixed({**autoencoder.defaults, **AE_OVERRIDES}, AE_PREFIX), **classifier.defaults},
        choices={**_prefixed(autoencoder.choices, AE_PREFIX), **classifier.choices},
        value_types=dict(classifier.value_types),
        ranges={**_prefixed(autoencoder.ranges, AE_PREFIX), **classifier.ranges},
    )


_AUTOENCODER = _spec(
    name="autoencoder",
    family="torch",
    task="reconstruction",
    description="Denoising-capable MLP autoencoder; ``embed`` returns the latent code.",
    # Linear and PCA-initialised by default: it starts at PCA's reconstruction. With a hidden ReLU layer and a
    # random start it stayed near MSE 1 (nothing reconstructed) on ~40-row cohorts and far above PCA at full
    # size (benchmarks/RESULTS.md, 2026-12-04). lr 1e-4: from PCA's optimum Adam's first steps at 1e-3 move the
    # weights off it by ~lr per coordinate whatever the gradient (test MSE up to +8e-4 above PCA on 40 rows).
    defaults={
        **ENCODER_DEFAULTS, "n_layers": 0, "init": "pca", **TRAINING_DEFAULTS, "lr": 1e-4, "weight_decay": 0.0,
        **TORCH_FIDELITY_DEFAULTS,
    },
    choices={**ENCODER_CHOICES, "init": AE_INITS, **TRAINING_CHOICES, **TORCH_FIDELITY_CHOICES},
    ranges={**ENCODER_RANGES, **TRAINING_RANGES, **FOLD_RANGES},
)

_CLASSIFIER = _spec(
    name="classifier",
    family="torch",
    task="classification",
    description="Encoder + MLP head trained with cross-entropy; ``embed`` returns the penultimate layer.",
    defaults={
        **ENCODER_DEFAULTS,
        "hidden_dim": 512,
        "latent_dim": 128,
        "dropout": 0.3,
        "head_layers": 1,
        "head_dim": 64,
        **LOSS_DEFAULTS,
        "encoder_from": "",
        "pretrain_epochs": 0,
        "freeze_encoder": False,
        **TRAINING_DEFAULTS,
        "lr": 3e-3,
        **TORCH_FIDELITY_DEFAULTS,
    },
    choices={**ENCODER_CHOICES, **LOSS_CHOICES, **TRAINING_CHOICES, **TORCH_FIDELITY_CHOICES},
    ranges={**ENCODER_RANGES, **HEAD_RANGES, "pretrain_epochs": AT_LEAST_0, **TRAINING_RANGES, **FOLD_RANGES},
)

_CONV_CLASSIFIER = _spec(
    name="conv_classifier",
    family="torch",
    task="classification",
    description="Genes read as a 1-D sequence through Conv1d/pool blocks, then an MLP head.",
    defaults={
        "conv_layers": 2,
        "conv_channels": 8,
        "channel_growth": 2.0,
        "kernel_size": 5,
        "pool_size": 2,
        "pooled_length": 0,
        "head_layers": 1,
        "head_dim": 128,
        "activation": "relu",
        "batch_norm": True,
        "dropout": 0.3,
        "input_noise": 0.0,
        **LOSS_DEFAULTS,
        **TRAINING_DEFAULTS,
        "lr": 3e-3,
        **TORCH_FIDELITY_DEFAULTS,
    },
    choices={"activation": ACTIVATION_NAMES, **LOSS_CHOICES, **TRAINING_CHOICES, **TORCH_FIDELITY_CHOICES},
    ranges={
        "conv_layers": AT_LEAST_1,
        "conv_channels": AT_LEAST_1,
        "channel_growth": POSITIVE,
        "kernel_size": AT_LEAST_1,
        "pool_size": AT_LEAST_1,
        "pooled_length": AT_LEAST_0,
        "dropout": FRACTION,
        "input_noise": AT_LEAST_0,
        **HEAD_RANGES,
        **TRAINING_RANGES,
        **FOLD_RANGES,
    },
)

_SVC = _spec(
    name="svc",
    family="sklearn",
    task="classification",
    description="Support-vector classifier (kernel, C, gamma, class_weight).",
    defaults={**SVC_DEFAULTS, **FIDELITY_DEFAULTS},
    choices={**SVC_CHOICES, **FIDELITY_CHOICES},
    value_types={"gamma": (str, float)},
    ranges={**SVC_RANGES, **FIDELITY_RANGES},
)

_RANDOM_FOREST = _spec(
    name="random_forest",
    family="sklearn",
    task="classification",
    description="Random forest (max_depth 0 = unlimited; max_features a name or a fraction).",
    defaults={
        "n_estimators": 300,
        "max_depth": 0,
        "max_features": "sqrt",
        "min_samples_leaf": 1,
        "class_weight": "balanced",
        **FIDELITY_DEFAULTS,
    },
    choices={
        "max_features": ("sqrt", "log2"),
        "class_weight": ("none", "balanced", "balanced_subsample"),
        **FIDELITY_CHOICES,
    },
    value_types={"max_features": (str, float)},
    ranges={
        "n_estimators": AT_LEAST_1,
        "max_depth": AT_LEAST_0,
        "max_features": Range(0, 1, low_open=True),
        "min_samples_leaf": AT_LEAST_1,
        **FIDELITY_RANGES,
    },
)

_KNN = _spec(
    name="knn",
    family="sklearn",
    task="classification",
    description="k-nearest neighbours (n_neighbors is capped at the training rows).",
    defaults={"n_neighbors": 5, "weights": "distance", "metric": "cosine", **FIDELITY_DEFAULTS},
    choices={"weights": ("uniform", "distance"), "metric": ("euclidean", "manhattan", "cosine"), **FIDELITY_CHOICES},
    ranges={"n_neighbors": AT_LEAST_1, **FIDELITY_RANGES},
)

_LOGISTIC_REGRESSION = _spec(
    name="logistic_regression",
    family="sklearn",
    task="classification",
    description="Multinomial logistic regression (solver auto: lbfgs for l1_ratio = 0, saga otherwise).",
    defaults={
        "C": 0.1,
        "l1_ratio": 0.0,
        "solver": "auto",
        "max_iter": 500,
        "tol": 1e-4,
        "class_weight": "balanced",
        **FIDELITY_DEFAULTS,
    },
    choices={"class_weight": CLASS_WEIGHTS, "solver": ("auto", "lbfgs", "saga"), **FIDELITY_CHOICES},
    ranges={"C": POSITIVE, "l1_ratio": Range(0, 1), "max_iter": AT_LEAST_1, "tol": POSITIVE, **FIDELITY_RANGES},
)

_KPCA_SVC = _spec(
    name="kpca_svc",
    family="sklearn",
    task="classification",
    description="KernelPCA then SVC, one Pipeline (the projection is fitted on training rows only).",
    defaults={
        "kpca_n_components": 128,
        "kpca_kernel": "rbf",
        "kpca_gamma": 0.0,
        **_prefixed(SVC_DEFAULTS, "svc_", skip=("class_weight",)),
        "class_weight": "balanced",
        **FIDELITY_DEFAULTS,
    },
    choices={
        "kpca_kernel": ("linear", "rbf", "poly", "sigmoid", "cosine"),
        **_prefixed(SVC_CHOICES, "svc_", skip=("class_weight",)),
        "class_weight": CLASS_WEIGHTS,
        **FIDELITY_CHOICES,
    },
    value_types={"svc_gamma": (str, float)},
    ranges={
        "kpca_n_components": AT_LEAST_1, "kpca_gamma": AT_LEAST_0, **_prefixed(SVC_RANGES, "svc_"), **FIDELITY_RANGES,
    },
)

_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _AUTOENCODER,
        _CLASSIFIER,
        _CONV_CLASSIFIER,
        _SVC,
        _RANDOM_FOREST,
        _KNN,
        _LOGISTIC_REGRESSION,
        _KPCA_SVC,
        _on_embeddings(_AUTOENCODER, _SVC),
        _on_embeddings(_AUTOENCODER, _KNN),
        _on_embeddings(_AUTOENCODER, _RANDOM_FOREST),
    )
}


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
