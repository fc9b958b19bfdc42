"""Comparison statistics: the table of every compared trial, and what ranks the samplers in it.

One row per trial (:data:`TRIAL_COLUMNS`): its sampler, seed, state, value and the running best;
:func:`summarize` condenses it per sampler, :func:`rank_samplers` orders them and :func:`verdict`
says in plain sentences who won.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from hpo.samplers import SAMPLER_SECONDS_KEY

TRIAL_COLUMNS = (
    "comparison", "problem", "sampler", "seed", "study", "number", "state", "value",
    "best_so_far", "elapsed_s", "sampler_s",
)


def trials_table(
    study: optuna.Study, *, comparison: str, problem: str, sampler: str, seed: int, direction: str,
    limit: int | None = None,
) -> pd.DataFrame:
    """One :data:`TRIAL_COLUMNS` row per trial of ``study`` by number (only the first ``limit`` when given)."""
    trials = sorted(
        (t for t in study.get_trials(deepcopy=False) if limit is None or t.number < limit), key=lambda t: t.number
    )
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    origin = min(starts) if starts else None
    rows = [{
        "comparison": comparison,
        "problem": problem,
        "sampler": sampler,
        "seed": seed,
        "study": study.study_name,
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value if trial.state == TrialState.COMPLETE else np.nan,
        "elapsed_s": (trial.datetime_complete - origin).total_seconds() if trial.datetime_complete and origin else np.nan,
        "sampler_s": trial.system_attrs.get(SAMPLER_SECONDS_KEY, np.nan),
    } for trial in trials]
    table = pd.DataFrame(rows, columns=[c for c in TRIAL_COLUMNS if c != "best_so_far"])
    table["best_so_far"] = best_so_far(table["value"], direction)
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


def _fmt(value: float) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.6g}"


def _fmt4(value: float) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
