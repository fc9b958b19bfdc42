"""Compare samplers side by side: one study per sampler x seed, then one table of all their trials.

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
import math
import multiprocessing
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from hpo.samplers import SAMPLER_SECONDS_KEY, SAMPLERS, TimedSampler, build_sampler, sampler_seed, trials_in_study

logger = logging.getLogger(__package__)

DEFAULT_SAMPLERS = ("tpe", "ga", "random", "nsga2", "cmaes")
QUIET_OPTIONS: dict[str, dict[str, Any]] = {"cmaes": {"warn_independent_sampling": False}}
"""Defaults that only silence per-trial warnings (CMA-ES samples categorical parameters randomly)."""

TRIAL_COLUMNS = (
    "comparison", "problem", "sampler", "seed", "study", "number", "state", "value",
    "best_so_far", "elapsed_s", "sampler_s",
)


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
    trials = [t for t in study.get_trials(deepcopy=False) if t.number < plan.n_trials]
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    origin = min(starts) if starts else None
    rows = []
    for trial in sorted(trials, key=lambda t: t.number):
        finished = trial.datetime_complete
        rows.append({
            "comparison": plan.prefix,
            "problem": problem.name,
            "sampler": sampler,
            "seed": seed,
            "study": name,
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value if trial.state == TrialState.COMPLETE else np.nan,
            "elapsed_s": (finished - origin).total_seconds() if finished and origin else np.nan,
            "sampler_s": trial.system_attrs.get(SAMPLER_SECONDS_KEY, np.nan),
        })
    table = pd.DataFrame(rows, columns=[c for c in TRIAL_COLUMNS if c != "best_so_far"])
    table["best_so_far"] = best_so_far(table["value"], problem.direction)
    return table[list(TRIAL_COLUMNS)]


def best_so_far(values: pd.Series, direction: str) -> pd.Series:
    """Running best of ``values`` in trial order (NaN = not complete; carried forward)."""
    values = values.astype(float)
    running = values.cummax() if direction == "maximize" else values.cummin()
    return running.ffill()


def trials_to_target(trials: pd.DataFrame, direction: str, target: float | None) -> pd.DataFrame:
    """Per study: the trial count (and, where ``elapsed_s`` is known, the seconds since the study
    started) at which the best value first reached ``target``; NaN if never; and its final best."""
    rows = []
    for (sampler, seed), study in trials.groupby(["sampler", "seed"], sort=False):
        needed = seconds = np.nan
        best = study["best_so_far"].to_numpy(dtype=float)
        if target is not None:
            reached = best >= target if direction == "maximize" else best <= target
            hits = np.flatnonzero(reached)
            if hits.size:
                needed = float(study["number"].to_numpy()[hits[0]] + 1)
                if "elapsed_s" in study:
                    seconds = float(study["elapsed_s"].to_numpy(dtype=float)[hits[0]])
        rows.append({"sampler": sampler, "seed": seed, "trials_to_target": needed,
                     "seconds_to_target": seconds, "best": best[-1] if best.size else np.nan})
    return pd.DataFrame(rows, columns=["sampler", "seed", "trials_to_target", "seconds_to_target", "best"])


def best_at(trials: pd.DataFrame, budgets: Sequence[int]) -> pd.DataFrame:
    """Best value found within the first ``budget`` trials, mean/std/median over seeds."""
    rows = []
    for sampler, by_sampler in trials.groupby("sampler", sort=False):
        for budget in budgets:
            per_seed = (
                by_sampler[by_sampler["number"] < budget].groupby("seed")["best_so_far"].last()
            )
            rows.append({
                "sampler": sampler,
                "budget": budget,
                "seeds": int(per_seed.notna().sum()),
                "mean": per_seed.mean(),
                "std": per_seed.std(ddof=1) if len(per_seed) > 1 else np.nan,
                "median": per_seed.median(),
            })
    return pd.DataFrame(rows)


def summarize(
    trials: pd.DataFrame,
    direction: str,
    target: float | None,
    sampler_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One row per sampler: final best (mean, std, median, range), target reached (seeds, median
    trials and seconds), pruned and failed fractions, the sampler's own milliseconds per trial, wall
    time per study and the options it ran with (JSON; ``{}`` = its defaults)."""
    to_target = trials_to_target(trials, direction, target)
    rows = []
    for sampler, by_sampler in trials.groupby("sampler", sort=False):
        final = by_sampler.groupby("seed")["best_so_far"].last()
        needed = to_target.loc[to_target["sampler"] == sampler, "trials_to_target"]
        seconds = to_target.loc[to_target["sampler"] == sampler, "seconds_to_target"]
        rows.append({
            "sampler": sampler,
            "seeds": int(final.size),
            "trials": int(by_sampler.groupby("seed").size().mean()),
            "best_mean": final.mean(),
            "best_std": final.std(ddof=1) if final.size > 1 else np.nan,
            "best_median": final.median(),
            "best_min": final.min(),
            "best_max": final.max(),
            "target": target if target is not None else np.nan,
            "reached_target": int(needed.notna().sum()) if target is not None else np.nan,
            "trials_to_target_median": needed.median() if needed.notna().any() else np.nan,
            "seconds_to_target_median": seconds.median() if seconds.notna().any() else np.nan,
            "pruned_fraction": float((by_sampler["state"] == "PRUNED").mean()),
            "failed_fraction": float((by_sampler["state"] == "FAIL").mean()),
            "sampler_ms_per_trial_mean": 1000 * by_sampler["sampler_s"].mean(),
            "sampler_ms_per_trial_median": 1000 * by_sampler["sampler_s"].median(),
            "wall_s_per_study": by_sampler.groupby("seed")["elapsed_s"].max().mean(),
            "sampler_options": json.dumps(dict((sampler_options or {}).get(sampler, {})), sort_keys=True,
                                          default=str),
        })
    return pd.DataFrame(rows)


RANKING_COLUMNS = (
    "rank_by_best", "sampler", "best_mean", "best_std", "seeds", "rank_by_target", "reached_target",
    "trials_to_target_median", "seconds_to_target_median", "sampler_options",
)


def rank_samplers(summary: pd.DataFrame, direction: str) -> pd.DataFrame:
    """The :func:`summarize` table ranked by mean final best (1 = best; ties by the median), with a
    second rank by time to target: most seeds that reached it, then fewest trials, then fewest
    seconds; samplers that never reached it rank after, by their best. Sorted by ``rank_by_best``."""
    ascending = direction != "maximize"
    table = summary.copy()
    by_best = table.sort_values(["best_mean", "best_median"], ascending=ascending, kind="stable")
    table.loc[by_best.index, "rank_by_best"] = range(1, len(table) + 1)
    reached = table["reached_target"].fillna(0)
    order = pd.DataFrame({
        "never": reached <= 0, "reached": -reached, "trials": table["trials_to_target_median"],
        "seconds": table["seconds_to_target_median"], "best": table["rank_by_best"],
    })
    by_target = order.sort_values(["never", "reached", "trials", "seconds", "best"], kind="stable")
    table.loc[by_target.index, "rank_by_target"] = range(1, len(table) + 1)
    table[["rank_by_best", "rank_by_target"]] = table[["rank_by_best", "rank_by_target"]].astype(int)
    if "sampler_options" not in table:
        table["sampler_options"] = "{}"
    return table.sort_values("rank_by_best")[list(RANKING_COLUMNS)].reset_index(drop=True)


def verdict(ranking: pd.DataFrame, direction: str, target: float | None) -> list[str]:
    """Plain sentences naming the winner by best value and the fastest sampler to the target."""
    first = ranking.iloc[0]
    spread = f" ± {_fmt4(first['best_std'])}" if not math.isnan(first["best_std"]) else ""
    lines = [f"Winner by best value: {first['sampler']} (mean best {_fmt4(first['best_mean'])}{spread} over "
             f"{int(first['seeds'])} seed(s), {'higher' if direction == 'maximize' else 'lower'} is better)."]
    if len(ranking) > 1:
        second = ranking.iloc[1]
        gap = abs(float(first["best_mean"]) - float(second["best_mean"]))
        if not math.isnan(first["best_std"]) and gap < float(first["best_std"]):
            lines.append(f"Runner-up {second['sampler']} ({_fmt4(second['best_mean'])}) is within one standard "
                         "deviation: not a clear win; add seeds to separate them.")
    if target is None:
        lines.append("No target given: no ranking by time to target (use --target).")
        return lines
    fastest = ranking.sort_values("rank_by_target").iloc[0]
    if not fastest["reached_target"] or math.isnan(fastest["reached_target"]):
        lines.append(f"No sampler reached the target {_fmt4(target)}.")
    else:
        seconds = fastest["seconds_to_target_median"]
        lines.append(
            f"Fastest to the target {_fmt4(target)}: {fastest['sampler']} (reached on "
            f"{int(fastest['reached_target'])}/{int(fastest['seeds'])} seeds, median "
            f"{_fmt4(fastest['trials_to_target_median'])} trials"
            + (f", {_fmt4(seconds)} s" if not math.isnan(seconds) else "") + ")."
        )
    never = ranking.loc[ranking["reached_target"].fillna(0) <= 0, "sampler"].tolist()
    if never and len(never) < len(ranking):
        lines.append(f"Never reached the target: {', '.join(never)}.")
    return lines


def default_prefix(problem_name: str) -> str:
    return f"compare-{re.sub(r'[^A-Za-z0-9_.-]', '-', problem_name)}-{time.strftime('%Y%m%d-%H%M%S')}"


def _fmt(value: float) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def _fmt4(value: float) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
