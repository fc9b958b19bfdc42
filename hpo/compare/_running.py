"""Running a comparison: one study per sampler x seed, run by one process or shared by several.

The engine is generic: a :class:`Problem` is an objective, a direction, an optional pruner and an
optional target. A :class:`ProblemSource` names one (a built-in test function or a study file) in a
picklable way, so that worker processes can rebuild it (loading the data once per process).

Studies are named ``{prefix}/{sampler}/seed{seed}`` and carry the user attributes
``comparison``, ``sampler``, ``seed`` (and ``sampler_options``), so the dashboard and reports can
group them. One worker runs a study with ``study.optimize``; several share it through
:func:`hpo.worker.trial_loop`, whose admission lock makes them stop at exactly ``n_trials``
finished trials and whose heartbeats re-run the trial of a worker that died. Re-running with the same prefix resumes: a study that already has ``n_trials`` trials
gets no more. Each sampler is wrapped in :class:`~hpo.samplers.timing.TimedSampler`, so the table
holds the sampler's own time per trial apart from the objective's.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from hpo.compare._statistics import _fmt, best_at, rank_samplers, summarize, trials_table, verdict
from hpo.samplers import SAMPLERS, TimedSampler, build_sampler, sampler_seed, trials_in_study

logger = logging.getLogger(__package__)

DEFAULT_SAMPLERS = ("tpe", "ga", "random", "nsga2", "cmaes")
DEFAULT_FUNCTION_TRIALS = 100
DEFAULT_STUDY_TRIALS = 20
QUIET_OPTIONS: dict[str, dict[str, Any]] = {"cmaes": {"warn_independent_sampling": False}}
"""Defaults that only silence per-trial warnings (CMA-ES samples categorical parameters randomly)."""



@dataclass(frozen=True)
class Problem:
    """What samplers are compared on."""

    name: str
    direction: str
    objective: Callable[[optuna.Trial], float]
    target: float | None = None
    make_pruner: Callable[[], optuna.pruners.BasePruner] | None = None
    """Builds a fresh pruner per study (some pruners keep per-study state)."""
    study_attrs: Mapping[str, Any] = field(default_factory=dict)
    default_sampler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    catch: tuple[type[Exception], ...] = ()


@dataclass(frozen=True)
class ProblemSource:
    """A picklable name for a problem: ``kind`` is ``"function"`` or ``"study"``."""

    kind: str
    ref: str
    overrides_json: str = "{}"
    """Study-file overrides (``{"data.preset": "tiny"}``) as JSON, so the source stays hashable."""
    device: str | None = None


@functools.lru_cache(maxsize=4)
def resolve_problem(source: ProblemSource) -> Problem:
    """Build the problem ``source`` names (cached per process: a study's data loads once)."""
    if source.kind == "function":
        from hpo.compare._functions import get_function

        function = get_function(source.ref)
        return Problem(
            name=function.name,
            direction=function.direction,
            objective=function.objective,
            target=function.target,
            study_attrs={"test_function": function.name, "direction": function.direction},
        )
    if source.kind == "study":
        return _study_file_problem(source)
    raise ValueError(f"unknown problem kind {source.kind!r}: use 'function' or 'study'")


def _study_file_problem(source: ProblemSource) -> Problem:
    """A study file's objective, direction, pruner and attributes, as ``hpo run`` builds them."""
    from data_pipeline import prepare_dataset
    from hpo.run import build_objective, study_attributes
    from hpo.samplers import build_pruner
    from hpo.study import load_study_file

    spec = load_study_file(source.ref, json.loads(source.overrides_json))
    data = prepare_dataset(spec.data)
    objective = build_objective(spec, data, device=source.device)
    return Problem(
        name=spec.name,
        direction=spec.direction,
        objective=objective,
        target=None,
        make_pruner=functools.partial(build_pruner, spec.pruner.name, spec.pruner.options),
        study_attrs=study_attributes(spec, data.fingerprint),
        default_sampler_options={spec.sampler.name: dict(spec.sampler.options)},
        # a trial that runs out of memory fails; the comparison goes on, as a worker would
        catch=(Exception,),
    )


@dataclass(frozen=True)
class ComparisonPlan:
    """Which samplers, seeds and budget; ``workers`` processes share each study."""

    source: ProblemSource
    samplers: tuple[str, ...]
    seeds: tuple[int, ...]
    n_trials: int
    prefix: str
    workers: int = 1
    sampler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    target: float | None = None
    """Value counted as reached; ``None``: the problem's own (recorded as study attribute ``target``)."""

    def __post_init__(self) -> None:
        unknown = [name for name in self.samplers if name not in SAMPLERS]
        if unknown or not self.samplers:
            raise ValueError(f"unknown sampler(s) {unknown}; expected some of {sorted(SAMPLERS)}")
        if len(set(self.samplers)) != len(self.samplers):
            raise ValueError(f"samplers listed twice: {list(self.samplers)}")
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-/]*", self.prefix):
            raise ValueError(f"comparison name {self.prefix!r}: use letters, digits, '_', '-', '.', '/'")
        for name in self.sampler_options:
            if name not in self.samplers:
                raise ValueError(f"options given for sampler {name!r}, which is not compared")

    def study_name(self, sampler: str, seed: int) -> str:
        return f"{self.prefix}/{sampler}/seed{seed}"

    def target_for(self, problem: Problem) -> float | None:
        return self.target if self.target is not None else problem.target

    def options_for(self, sampler: str, problem: Problem) -> dict[str, Any]:
        return {
            **QUIET_OPTIONS.get(sampler, {}),
            **problem.default_sampler_options.get(sampler, {}),
            **self.sampler_options.get(sampler, {}),
        }


def run_comparison(
    plan: ComparisonPlan,
    storage: str | optuna.storages.BaseStorage | None = None,
    *,
    on_study_done: Callable[[str, pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Run every sampler x seed study of ``plan`` and return the table of their trials.

    ``storage`` is a URL (workers open it themselves), a storage object (one worker only) or
    ``None`` for a fresh in-memory storage (one worker only; nothing is kept).
    """
    if storage is None:
        storage = optuna.storages.InMemoryStorage()
    if plan.workers > 1 and not isinstance(storage, str):
        raise ValueError("several workers need a storage URL (sqlite:///... or postgresql://...)")
    problem = resolve_problem(plan.source)
    for sampler in plan.samplers:  # fail on a bad option before any study runs
        build_sampler(sampler, plan.options_for(sampler, problem), 0)
    store = _open_storage(storage)
    pool = (
        ProcessPoolExecutor(plan.workers, mp_context=multiprocessing.get_context("spawn"))
        if plan.workers > 1
        else None
    )
    tables = []
    try:
        for sampler in plan.samplers:
            for seed in plan.seeds:
                name = plan.study_name(sampler, seed)
                _create_study(store, name, plan, problem, sampler, seed)
                # the rule of `hpo run` (hpo.samplers.seeding): worker k of a fresh study gets seed + 1000 k,
                # a resumed one other seeds, so it does not repeat the configurations it already has
                before = trials_in_study(store, name)
                started = time.perf_counter()
                if pool is None:
                    _optimize(problem, store, name, sampler, plan.options_for(sampler, problem),
                              sampler_seed(seed, 0, before), plan.n_trials)
                else:
                    futures = [
                        pool.submit(_share_in_worker, plan.source, storage, name, sampler,
                                    plan.options_for(sampler, problem), sampler_seed(seed, k, before),
                                    plan.n_trials, k)
                        for k in range(plan.workers)
                    ]
                    for future in futures:
                        future.result()
                table = study_trials(store, name, plan, sampler, seed, problem)
                tables.append(table)
                logger.info(
                    "%s: best %s after %d trials in %.1f s", name,
                    _fmt(table["best_so_far"].iloc[-1] if len(table) else float("nan")),
                    len(table), time.perf_counter() - started,
                )
                if on_study_done is not None:
                    on_study_done(name, table)
    finally:
        if pool is not None:
            pool.shutdown()
    return pd.concat(tables, ignore_index=True)


def _open_storage(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    if not isinstance(storage, str):
        return storage
    from hpo.storage import open_storage

    # Comparisons run trials in-process and finish them; a heartbeat thread per trial would only
    # add the same overhead to every sampler.
    return open_storage(storage, heartbeat_interval=None)


def _create_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    plan: ComparisonPlan,
    problem: Problem,
    sampler: str,
    seed: int,
) -> None:
    study = optuna.create_study(
        study_name=name, storage=storage, direction=problem.direction, load_if_exists=True
    )
    if study.direction.name.lower() != problem.direction:
        raise ValueError(f"study {name!r} exists with another direction; pick another comparison name")
    attrs = {
        **problem.study_attrs,
        "comparison": plan.prefix,
        "problem": problem.name,
        "sampler": sampler,
        "sampler_options": plan.options_for(sampler, problem),
        "seed": seed,
        "n_trials": plan.n_trials,
    }
    if plan.target_for(problem) is not None:
        attrs["target"] = plan.target_for(problem)
    existing = study.user_attrs
    for key, value in attrs.items():
        if existing.get(key) != value:
            study.set_user_attr(key, value)


def _load_timed_study(
    problem: Problem,
    storage: optuna.storages.BaseStorage,
    name: str,
    sampler: str,
    options: Mapping[str, Any],
    seed: int,
) -> optuna.Study:
    """The study with its sampler timed (:class:`TimedSampler`) and a fresh pruner of the problem."""
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=TimedSampler(build_sampler(sampler, options, seed)),
        pruner=problem.make_pruner() if problem.make_pruner else None,
    )


def _optimize(
    problem: Problem,
    storage: optuna.storages.BaseStorage,
    name: str,
    sampler: str,
    options: Mapping[str, Any],
    seed: int,
    n_trials: int,
) -> None:
    study = _load_timed_study(problem, storage, name, sampler, options, seed)
    if len(study.get_trials(deepcopy=False)) >= n_trials:
        return
    study.optimize(
        problem.objective,
        callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=None)],
        catch=problem.catch,
    )


def _share_in_worker(
    source: ProblemSource,
    storage_url: str,
    name: str,
    sampler: str,
    options: Mapping[str, Any],
    seed: int,
    n_trials: int,
    worker_index: int,
) -> None:
    """One of several processes sharing a study: exactly ``n_trials`` finished trials between them."""
    from hpo.run import AdmissionLock, TrialBudget, trial_loop
    from hpo.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = resolve_problem(source)
    storage = open_storage(storage_url)  # with heartbeats: a dead worker's trial is failed and re-run
    study = _load_timed_study(problem, storage, name, sampler, options, seed)
    lock = AdmissionLock(storage_url, name)
    try:
        trial_loop(
            study, problem.objective, storage=storage, lock=lock,
            budget=TrialBudget(n_trials, max_failed=n_trials, timeout=None, started=time.monotonic()),
            label=f"{name} worker {worker_index}", metric="value",
            free_memory=source.kind == "study", log_trials=source.kind == "study",
        )
    finally:
        lock.close()


def study_trials(
    storage: optuna.storages.BaseStorage,
    name: str,
    plan: ComparisonPlan,
    sampler: str,
    seed: int,
    problem: Problem,
) -> pd.DataFrame:
    """One row per trial of the first ``n_trials`` by number (retries of failed trials past them are cut)."""
    study = optuna.load_study(study_name=name, storage=storage)
    return trials_table(study, comparison=plan.prefix, problem=problem.name, sampler=sampler, seed=seed,
                        direction=problem.direction, limit=plan.n_trials)


def default_prefix(problem_name: str) -> str:
    return f"compare-{re.sub(r'[^A-Za-z0-9_.-]', '-', problem_name)}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class ComparisonResult:
    """A finished comparison: every trial, the per-sampler summary, the ranking and the verdict."""

    plan: ComparisonPlan
    problem: Problem
    trials: pd.DataFrame
    summary: pd.DataFrame
    ranking: pd.DataFrame
    verdict: list[str]
    budgets: pd.DataFrame
    """Best value within a quarter, half and all of the trials (:func:`best_at`)."""

    @property
    def target(self) -> float | None:
        return self.plan.target_for(self.problem)


def compare_samplers(plan: ComparisonPlan, storage: str | optuna.storages.BaseStorage | None = None) -> ComparisonResult:
    """Run ``plan`` (:func:`run_comparison`) and rank its samplers: what ``hpo compare`` reports."""
    problem = resolve_problem(plan.source)
    trials = run_comparison(plan, storage)
    target = plan.target_for(problem)
    options = {sampler: plan.options_for(sampler, problem) for sampler in plan.samplers}
    summary = summarize(trials, problem.direction, target, options)
    ranking = rank_samplers(summary, problem.direction)
    budgets = sorted({b for b in (plan.n_trials // 4, plan.n_trials // 2, plan.n_trials) if b > 0})
    return ComparisonResult(plan, problem, trials, summary, ranking, verdict(ranking, problem.direction, target),
                            best_at(trials, budgets))


def default_n_trials(source: ProblemSource) -> int:
    """Trials per study when none are asked for: a test function's 100, else the study file's n_trials, else 20."""
    if source.kind == "function":
        return DEFAULT_FUNCTION_TRIALS
    n_trials = resolve_problem(source).study_attrs.get("n_trials")
    return int(n_trials) if n_trials else DEFAULT_STUDY_TRIALS
