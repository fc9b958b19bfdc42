"""Pick a pruner by the name a study file gives; options go to Optuna's constructor unchanged.

``wilcoxon`` compares fold-wise (or instance-wise) values of a trial with the best
trial's at the same steps, so it fits scikit-learn models with ``fidelity = "folds"``.
The others compare learning curves (epochs, growing training subsets).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Container, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.samplers._options import accepted_options, check_options


class _CompletedTrialsView:
    """The study as a pruner sees it, with a snapshot of its completed trials."""

    def __init__(self, study: optuna.Study, completed: list[FrozenTrial]) -> None:
        self._study = study
        self._completed = completed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        if states is not None and set(states) == {TrialState.COMPLETE}:
            return copy.deepcopy(self._completed) if deepcopy else list(self._completed)
        return self._study.get_trials(deepcopy=deepcopy, states=states)


class _CompletedTrialsOncePerTrial:
    """Read the completed trials once per pruned trial (and every ``refresh_seconds``), not at every report.

    Optuna's percentile/median pruner asks the storage for every completed trial each time a trial
    reports: 7 SQL statements through Optuna's RDB cache, 5-15 ms per epoch, 3-7 % of a classifier
    trial of a few seconds (benchmarks/overhead.py). With one worker the decisions are exactly
    Optuna's (no other trial completes meanwhile); with many, a trial that completed less than
    ``refresh_seconds`` ago is taken into account a little later.
    """

    refresh_seconds: float = 10.0

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        key = (study.study_name, trial.number)
        snapshot = getattr(self, "_snapshot", None)
        if snapshot is None or snapshot[0] != key or time.monotonic() - snapshot[1] > self.refresh_seconds:
            completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            snapshot = self._snapshot = (key, time.monotonic(), completed)
        return super().prune(_CompletedTrialsView(study, snapshot[2]), trial)  # type: ignore[misc]


class MedianPruner(_CompletedTrialsOncePerTrial, optuna.pruners.MedianPruner):
    """Optuna's MedianPruner, reading the completed trials once per trial."""


class PercentilePruner(_CompletedTrialsOncePerTrial, optuna.pruners.PercentilePruner):
    """Optuna's PercentilePruner, reading the completed trials once per trial."""


PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "median": MedianPruner,
    "percentile": PercentilePruner,
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
    allowed = accepted_options(cls)
    for option in options:
        if allowed is not None and option not in allowed:
            raise ValueError(f"pruner.{option}: unknown option for pruner {name!r}; allowed: {sorted(allowed)}")
    check_options("pruner", name, cls, options)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # WilcoxonPruner
            return cls(**options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"pruner {name!r}: bad options {options}: {error}") from None
