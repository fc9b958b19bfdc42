"""A genetic algorithm as a first-class Optuna sampler.

:class:`GeneticSampler` extends Optuna's :class:`~optuna.samplers.BaseGASampler`, which numbers
the generations of trials and caches each generation's parents in the study's system attributes.
Everything the algorithm needs therefore lives in the storage, so the sampler works with every
storage, with several worker processes on one study, and shows in optuna-dashboard like any sampler.

One generation is ``population_size`` completed trials. The mating pool of generation ``g`` is the
completed trials of generation ``g - 1`` plus the ``elite_size`` best of all trials completed when
the pool is drawn (elitism: the best trial is always in the pool, even one that finished after its
own generation had been bred from). Each child comes from two tournament-selected parents, a
crossover (uniform for categorical parameters; simulated binary or blend crossover for numbers, in
log space for log distributions) and a mutation (Gaussian, scaled to the parameter's range, for
numbers; a different choice for categorical parameters). Integers and stepped floats are rounded to
their step and every value is clipped to its bounds.

The first generation, and every parameter that is not in all completed trials (conditional
parameters) or whose distribution changed, are drawn by an independent sampler (random by default).
Pruned and failed trials never become parents; enqueued trials keep their fixed parameters and,
once complete, take part in selection like any other trial.

In a multi-objective study "best" is NSGA-II's order: the non-domination rank first, then the larger
crowding distance within a front.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseGASampler, BaseSampler, RandomSampler, TPESampler
from optuna.samplers.nsgaii._elite_population_selection_strategy import _calc_crowding_distance
from optuna.search_space import IntersectionSearchSpace
from optuna.storages import BaseStorage
from optuna.study import Study, StudyDirection
from optuna.study._multi_objective import _fast_non_domination_rank
from optuna.trial import FrozenTrial, TrialState

from hpo.storage import study_system_attrs_with_prefix

CROSSOVERS = ("sbx", "blend")
INDEPENDENT_SAMPLERS = ("random", "tpe")


class GeneticSampler(BaseGASampler):
    """Genetic algorithm: tournament selection, elitism, crossover and mutation.

    Args:
        population_size: completed trials per generation (>= 2).
        tournament_size: trials drawn per tournament; the best of them becomes a parent (>= 1).
        elite_size: best trials so far kept in every mating pool (>= 0, < population_size).
        crossover: ``"sbx"`` (simulated binary crossover) or ``"blend"`` (BLX-alpha) for numbers.
        crossover_prob: probability that a child is a crossover of two parents rather than a
            copy of one (before mutation).
        sbx_eta: distribution index of SBX; larger keeps children closer to their parents.
        blend_alpha: how far beyond its parents a BLX-alpha child may go, as a fraction of their gap.
        mutation_prob: probability that each parameter mutates; ``None`` means 1 / number of
            parameters.
        mutation_scale: standard deviation of the Gaussian mutation as a fraction of the range
            (of the log range for log distributions).
        seed: seed of the sampler's own random state and of the independent sampler.
        independent_sampler: sampler for the first generation and for conditional parameters:
            ``"random"``, ``"tpe"`` or any :class:`~optuna.samplers.BaseSampler`.
    """

    def __init__(
        self,
        *,
        population_size: int = 10,
        tournament_size: int = 3,
        elite_size: int = 2,
        crossover: str = "sbx",
        crossover_prob: float = 0.9,
        sbx_eta: float = 5.0,
        blend_alpha: float = 0.5,
        mutation_prob: float | None = None,
        mutation_scale: float = 0.1,
        seed: int | None = None,
        independent_sampler: str | BaseSampler = "random",
    ) -> None:
        _check_int("population_size", population_size, minimum=2)
        _check_int("tournament_size", tournament_size, minimum=1)
        _check_int("elite_size", elite_size, minimum=0)
        if elite_size >= population_size:
            raise ValueError(
                f"elite_size must be smaller than population_size: elite_size={elite_size}, "
                f"population_size={population_size}"
            )
        if crossover not in CROSSOVERS:
            raise ValueError(f"crossover must be one of {CROSSOVERS}, got {crossover!r}")
        _check_fraction("crossover_prob", crossover_prob)
        _check_positive("sbx_eta", sbx_eta, allow_zero=True)
        _check_positive("blend_alpha", blend_alpha, allow_zero=True)
        if mutation_prob is not None:
            _check_fraction("mutation_prob", mutation_prob)
        _check_positive("mutation_scale", mutation_scale)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")

        super().__init__(population_size=population_size)
        self._tournament_size = tournament_size
        self._elite_size = elite_size
        self._crossover = crossover
        self._crossover_prob = crossover_prob
        self._sbx_eta = sbx_eta
        self._blend_alpha = blend_alpha
        self._mutation_prob = mutation_prob
        self._mutation_scale = mutation_scale
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._independent_sampler = _independent_sampler(independent_sampler, seed)
        # The study this in-process state belongs to; reset when the sampler moves to another study
        # (in-memory storages number every study 0, so the id alone does not tell studies apart).
        self._study_key: tuple[BaseStorage, int] | None = None
        self._search_space = IntersectionSearchSpace()
        # Parents of a generation never change once cached in the storage: keep them in-process too,
        # with each parent's rank in the pool (smaller is better).
        self._pool_cache: dict[int, tuple[list[FrozenTrial], dict[int, tuple[float, float]]]] = {}
        # Generation numbered in before_trial, by trial id: saves a second storage write per trial.
        self._generations: dict[int, int] = {}
        # The elite kept trial by trial (:meth:`_elite`): every complete trial that fewer than
        # ``elite_size`` complete trials dominate, its losses, and how many archived trials dominate it.
        self._elite_lock = threading.Lock()
        self._archive: dict[int, tuple[FrozenTrial, np.ndarray, int]] = {}
        self._elite_unfinished: list[int] = []
        self._elite_seen = 0
        missing = [name for name in _BASE_CACHE if not hasattr(self, name)]
        if missing:  # pragma: no cover - another Optuna layout; _use_study could not reset it
            raise RuntimeError(f"optuna.samplers.BaseGASampler has no {', '.join(missing)}: update GeneticSampler")

    # -- BaseSampler ------------------------------------------------------------------------

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._use_study(study)
        return {
            name: distribution
            for name, distribution in self._search_space.calculate(study, use_cache=True).items()
            if not distribution.single()
        }

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        generation = self._generations.get(trial._trial_id)
        if generation is None:
            generation = self.get_trial_generation(study, trial)
        parents, ranks = self._mating_pool(study, generation)
        pool = [parent for parent in parents if all(name in parent.params for name in search_space)]
        if len(pool) < 2:
            return {}
        mother = self._tournament(pool, ranks)
        father = self._tournament(pool, ranks, avoid=mother)
        if self._rng.random() < self._crossover_prob:
            child = self._cross(mother.params, father.params, search_space)
        else:
            child = {name: mother.params[name] for name in search_space}
        child = self._mutate(child, search_space)
        if child == {name: mother.params[name] for name in search_space}:
            # A copy of a parent would spend a trial re-measuring a known point: change one gene.
            name = list(search_space)[int(self._rng.integers(len(search_space)))]
            child[name] = self._mutate_value(child[name], search_space[name])
        return {
            name: value
            for name, value in child.items()
            if search_space[name]._contains(search_space[name].to_internal_repr(value))
        }

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # Number the generation now, so enqueued trials whose parameters are all fixed (and thus
        # never reach sample_relative) still belong to a generation and can become parents.
        self._use_study(study)
        self._generations[trial._trial_id] = self.get_trial_generation(study, trial)
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._generations.pop(trial._trial_id, None)
        self._independent_sampler.after_trial(study, trial, state, values)

    # -- BaseGASampler ----------------------------------------------------------------------

    def select_parent(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Completed trials of the previous generation plus the best ``elite_size`` completed so far.

        The elite is drawn from every trial complete now, whatever generation it was numbered in:
        with parallel workers the best trial may finish after its own generation was bred from.
        Only complete trials are ever population members (pruned and failed trials are not).
        Sorted by trial number so the freshly computed and the storage-cached pool agree.
        """
        offspring = self.get_population(study, generation - 1)
        pool = {t.number: t for t in offspring}
        pool.update({t.number: t for t in self._elite(study)})
        return [pool[number] for number in sorted(pool)]

    def get_parent_population(self, study: Study, generation: int) -> list[FrozenTrial]:
        """Optuna's, reading only this generation's cached parents, not every study system attribute.

        (optuna-dashboard's notes and figures add study system attributes with every trial.)
        """
        if generation == 0:
            return []
        key = self._get_parent_cache_key_prefix() + str(generation)
        cached = study_system_attrs_with_prefix(study._storage, study._study_id, key).get(key)
        if cached is None:
            return super().get_parent_population(study, generation)
        ids = set(cached)
        return [trial for trial in study._get_trials(deepcopy=False, use_cache=True) if trial._trial_id in ids]

    # -- the operators ----------------------------------------------------------------------

    def _use_study(self, study: Study) -> None:
        """Forget the in-process state of another study this sampler served before.

        BaseGASampler's own generation cache resets only when the study id changes, and every
        in-memory study has id 0: it is reset here too, keyed by the storage object and the id.
        """
        key = (study._storage, study._study_id)
        if self._study_key is None or self._study_key[0] is not key[0] or self._study_key[1] != key[1]:
            self._study_key = key
            self._search_space = IntersectionSearchSpace()
            self._pool_cache.clear()
            self._generations.clear()
            with self._thread_lock:
                self._cached_study_id = None
                self._cached_generation = 0
                self._cached_generation_numbers = []
                self._cached_unfinished_numbers = []
                self._cached_unseen_trial_start = 0
            with self._elite_lock:
                self._archive.clear()
                self._elite_unfinished = []
                self._elite_seen = 0

    def _elite(self, study: Study) -> list[FrozenTrial]:
        """The ``elite_size`` best complete trials, best first (ties: the earlier trial), kept trial by trial.

        Only trials that finished since the last call are looked at. The archive holds the complete
        trials that fewer than ``elite_size`` complete trials dominate (a strictly better value, or
        Pareto dominance): any other trial has ``elite_size`` trials ranked before it for good. Every
        trial dominating an archived one is archived too, so non-domination ranks and, on the fronts
        the elite is drawn from, crowding distances computed on the archive equal those on all trials.
        """
        if self._elite_size == 0:
            return []
        signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
        with self._elite_lock:
            trials = study._get_trials(deepcopy=False, use_cache=True)
            if len(trials) < self._elite_seen:  # not the trials seen before: start over
                self._archive.clear()
                self._elite_unfinished, self._elite_seen = [], 0
            unfinished = []
            for number in [*self._elite_unfinished, *range(self._elite_seen, len(trials))]:
                trial = trials[number]
                if trial.state == TrialState.COMPLETE:
                    self._archive_trial(trial, np.asarray(trial.values, dtype=float) * signs)
                elif not trial.state.is_finished():
                    unfinished.append(number)
            self._elite_unfinished, self._elite_seen = unfinished, len(trials)
            archived = [trial for trial, _, _ in self._archive.values()]
        ranks = _ranks(archived, study.directions)
        return sorted(archived, key=lambda t: (ranks[t.number], t.number))[: self._elite_size]

    def _archive_trial(self, trial: FrozenTrial, losses: np.ndarray) -> None:
        dominators = sum(_dominates(other, losses) for _, other, _ in self._archive.values())
        if dominators >= self._elite_size:
            return
        for number, (member, other, count) in list(self._archive.items()):
            if _dominates(losses, other):
                if count + 1 >= self._elite_size:
                    del self._archive[number]
                else:
                    self._archive[number] = (member, other, count + 1)
        self._archive[trial.number] = (trial, losses, dominators)

    def _mating_pool(
        self, study: Study, generation: int
    ) -> tuple[list[FrozenTrial], dict[int, tuple[float, float]]]:
        if generation not in self._pool_cache:
            pool = sorted(self.get_parent_population(study, generation), key=lambda t: t.number)
            if not pool:
                return [], {}
            self._pool_cache[generation] = (pool, _ranks(pool, study.directions))
        return self._pool_cache[generation]

    def _tournament(
        self,
        pool: list[FrozenTrial],
        ranks: dict[int, tuple[float, float]],
        avoid: FrozenTrial | None = None,
    ) -> FrozenTrial:
        candidates = [t for t in pool if avoid is None or t.number != avoid.number] or pool
        size = min(self._tournament_size, len(candidates))
        drawn = self._rng.choice(len(candidates), size=size, replace=False)
        return min((candidates[int(i)] for i in drawn), key=lambda t: (ranks[t.number], t.number))

    def _cross(
        self,
        mother: dict[str, Any],
        father: dict[str, Any],
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        child: dict[str, Any] = {}
        for name, distribution in search_space.items():
            a, b = mother[name], father[name]
            if isinstance(distribution, CategoricalDistribution):
                child[name] = a if self._rng.random() < 0.5 else b
                continue
            x, y = _to_internal(a, distribution), _to_internal(b, distribution)
            if self._crossover == "sbx":
                z = self._sbx(x, y)
            else:
                low, high = min(x, y), max(x, y)
                gap = (high - low) * self._blend_alpha
                z = self._rng.uniform(low - gap, high + gap)
            child[name] = _from_internal(z, distribution)
        return child

    def _sbx(self, x: float, y: float) -> float:
        u = self._rng.random()
        if u <= 0.5:
            beta = (2.0 * u) ** (1.0 / (self._sbx_eta + 1.0))
        else:
            beta = (1.0 / (2.0 * (1.0 - u))) ** (1.0 / (self._sbx_eta + 1.0))
        sign = 1.0 if self._rng.random() < 0.5 else -1.0
        return 0.5 * ((x + y) + sign * beta * (x - y))

    def _mutate(
        self, child: dict[str, Any], search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        rate = self._mutation_prob if self._mutation_prob is not None else 1.0 / len(search_space)
        return {
            name: self._mutate_value(value, search_space[name])
            if self._rng.random() < rate
            else value
            for name, value in child.items()
        }

    def _mutate_value(self, value: Any, distribution: BaseDistribution) -> Any:
        if isinstance(distribution, CategoricalDistribution):
            current = distribution.to_internal_repr(value)
            others = [i for i in range(len(distribution.choices)) if i != current]
            if not others:
                return value
            return distribution.choices[others[int(self._rng.integers(len(others)))]]
        low, high = _internal_bounds(distribution)
        sigma = self._mutation_scale * (high - low)
        step = getattr(distribution, "step", None)
        if step is not None and not getattr(distribution, "log", False):
            sigma = max(sigma, float(step))  # a mutation that always rounds back is no mutation
        return _from_internal(_to_internal(value, distribution) + self._rng.normal(0.0, sigma), distribution)


# -- helpers ----------------------------------------------------------------------------------

_BASE_CACHE = (
    "_thread_lock", "_cached_study_id", "_cached_generation", "_cached_generation_numbers",
    "_cached_unfinished_numbers", "_cached_unseen_trial_start",
)
"""BaseGASampler's generation cache, reset by :meth:`GeneticSampler._use_study`."""


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether losses ``a`` are no worse than ``b`` in every objective and better in one."""
    return bool(np.all(a <= b) and np.any(a < b))


def _ranks(
    trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]
) -> dict[int, tuple[float, float]]:
    """Rank of each complete trial by number, smaller is better.

    One objective: the loss (the value, negated when maximising). Several objectives: NSGA-II's
    order, the non-domination rank and then the negated crowding distance within the front.
    """
    if not trials:
        return {}
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    losses = np.array([trial.values for trial in trials], dtype=float) * signs
    if len(directions) == 1:
        return {t.number: (float(loss[0]), 0.0) for t, loss in zip(trials, losses)}
    fronts = _fast_non_domination_rank(losses)
    ranks: dict[int, tuple[float, float]] = {}
    for front in np.unique(fronts):
        members = [t for t, rank in zip(trials, fronts) if rank == front]
        crowding = _calc_crowding_distance(list(members))
        ranks.update({t.number: (float(front), -crowding[t.number]) for t in members})
    return ranks


def _independent_sampler(choice: str | BaseSampler, seed: int | None) -> BaseSampler:
    if isinstance(choice, BaseSampler):
        return choice
    if choice == "random":
        return RandomSampler(seed=seed)
    if choice == "tpe":
        return TPESampler(seed=seed)
    raise ValueError(
        f"independent_sampler must be one of {INDEPENDENT_SAMPLERS} or a sampler, got {choice!r}"
    )


def _internal_bounds(distribution: FloatDistribution | IntDistribution) -> tuple[float, float]:
    if distribution.log:
        return math.log(distribution.low), math.log(distribution.high)
    return float(distribution.low), float(distribution.high)


def _to_internal(value: float, distribution: FloatDistribution | IntDistribution) -> float:
    return math.log(value) if distribution.log else float(value)


def _from_internal(x: float, distribution: FloatDistribution | IntDistribution) -> float | int:
    """Map back from (log) space: clip to the bounds and round to the step."""
    low, high = _internal_bounds(distribution)
    x = min(max(x, low), high)
    value = math.exp(x) if distribution.log else x
    if isinstance(distribution, IntDistribution):
        steps = round((value - distribution.low) / distribution.step)
        value = distribution.low + steps * distribution.step
        return int(min(max(value, distribution.low), distribution.high))
    if distribution.step is not None:
        steps = round((value - distribution.low) / distribution.step)
        value = distribution.low + steps * distribution.step
    return float(min(max(value, distribution.low), distribution.high))


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
