"""Pick a pruner by the name a study file gives; options go to Optuna's constructor unchanged.

``wilcoxon`` compares fold-wise (or instance-wise) values of a trial with the best
trial's at the same steps, so it fits scikit-learn models with ``fidelity = "folds"``.
The others compare learning curves (epochs, growing training subsets).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import optuna

PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "none": optuna.pruners.NopPruner,
}
ALIASES = {"successive-halving": "successive_halving", "sha": "successive_halving", "nop": "none"}


def canonical_pruner_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; expected one of {sorted(PRUNERS)}")
    return name


def build_pruner(name: str, options: Mapping[str, Any] | None = None) -> optuna.pruners.BasePruner:
    """Build the pruner ``name`` with keyword ``options``; ``ValueError`` naming a bad option."""
    cls = PRUNERS[canonical_pruner_name(name)]
    options = dict(options or {})
    parameters = inspect.signature(cls).parameters
    for option in options:
        if option not in parameters:
            raise ValueError(f"pruner.{option}: unknown option for pruner {name!r}; allowed: {sorted(parameters)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # WilcoxonPruner
            return cls(**options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"pruner {name!r}: bad options {options}: {error}") from None
