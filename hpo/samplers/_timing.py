"""Measure a sampler's own time per trial, apart from the objective's.

:class:`TimedSampler` wraps any sampler, times every call Optuna makes into it for a trial
(``before_trial``, ``infer_relative_search_space``, ``sample_relative``, each
``sample_independent`` and ``after_trial``) and stores the total in the trial's system
attributes under :data:`SAMPLER_SECONDS_KEY`, so that it is in the storage for every worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from hpo.storage import study_storage, trial_id

SAMPLER_SECONDS_KEY = "hpo:sampler_seconds"

_T = TypeVar("_T")


class TimedSampler(BaseSampler):
    """Delegates everything to ``sampler`` and records the time spent in it per trial."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler
        self._seconds: dict[int, float] = {}

    def __str__(self) -> str:
        return str(self.sampler)

    def _timed(self, trial: FrozenTrial, call: Callable[..., _T], *args: Any) -> _T:
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            elapsed = time.perf_counter() - start
            self._seconds[trial.number] = self._seconds.get(trial.number, 0.0) + elapsed

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._timed(trial, self.sampler.before_trial, study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._timed(trial, self.sampler.infer_relative_search_space, study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._timed(trial, self.sampler.sample_relative, study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._timed(
            trial, self.sampler.sample_independent, study, trial, param_name, param_distribution
        )

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._timed(trial, self.sampler.after_trial, study, trial, state, values)
        seconds = self._seconds.pop(trial.number, 0.0)
        study_storage(study).set_trial_system_attr(trial_id(trial), SAMPLER_SECONDS_KEY, seconds)
