"""Pick a sampler by the name a study file gives; options go to its constructor unchanged."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import optuna

from hpo.samplers._options import accepted_options, check_options

SAMPLERS: dict[str, str] = {
    "tpe": "optuna.samplers:TPESampler",
    "random": "optuna.samplers:RandomSampler",
    "ga": "hpo.samplers._genetic:GeneticSampler",
    "nsga2": "optuna.samplers:NSGAIISampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "gp": "optuna.samplers:GPSampler",
    "qmc": "optuna.samplers:QMCSampler",
}
"""Study-file sampler name -> ``module:class`` (imported lazily: ``ga`` lives in this project)."""


def sampler_class(name: str) -> Callable[..., optuna.samplers.BaseSampler]:
    """The sampler class for ``name``; ``ValueError`` for an unknown name, ``ImportError`` if missing."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    module_name, class_name = SAMPLERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_sampler(name: str, options: Mapping[str, Any] | None = None, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Build the sampler ``name`` with keyword ``options`` and ``seed``.

    Raises ``ValueError`` naming the option when an option is unknown, has a value of the wrong type
    (a string where Optuna wants a callable, :func:`hpo.options.check_options`) or a bad value.
    """
    cls = sampler_class(name)
    options = dict(options or {})
    if "seed" in options:
        raise ValueError("sampler.seed: give the seed as `seed`, not inside the options")
    accepted = accepted_options(cls)
    for option in options:
        if accepted is not None and option not in accepted:
            allowed = sorted(k for k in accepted if k != "seed")
            raise ValueError(f"sampler.{option}: unknown option for sampler {name!r}; allowed: {allowed}")
    check_options("sampler", name, cls, options)
    try:
        with warnings.catch_warnings():
            # QMC, GP options, `group`, ... are "experimental" in Optuna; a study file picks them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return cls(seed=seed, **options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"sampler {name!r}: bad options {options}: {error}") from None
