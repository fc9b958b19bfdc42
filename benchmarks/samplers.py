"""Benchmark: the genetic algorithm against NSGA-II (as a single-objective GA), TPE, random and CMA-ES.

Part 1 (quality) runs every sampler on every built-in test function (``hpo.benchmark_functions``)
for 200 trials and many seeds through ``hpo.compare.run_comparison`` with in-memory storage, and
reports the best value within the first 50, 100 and 200 trials as mean ± standard deviation over
seeds. None of these samplers knows the budget in advance, so the best of the first 50 trials of a
200-trial study is exactly the result of a 50-trial study.

Part 2 (overhead) measures the sampler's own time per trial (``TimedSampler``: time inside the
sampler, not the objective) along a 1,000-trial study, in memory and in SQLite, and fits the
growth exponent between trials 100-200 and 900-1000 (1 = linear).

Seeds 100.. are used, not the seeds 0..5 of the small sweep that chose the GA's defaults.

    python benchmarks/samplers.py                 # full run (~10 min on 2 cores), prints Markdown
    python benchmarks/samplers.py --write         # ... and replaces its section in RESULTS.md
    python benchmarks/samplers.py --quick         # smoke run: 2 seeds, 60 trials, 200-trial overhead
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from _perf import machine  # benchmarks/ is the script's folder, first on sys.path

from hpo.compare import FUNCTIONS, ComparisonPlan, ProblemSource, best_at, run_comparison, trials_to_target
from hpo.samplers import SAMPLER_SECONDS_KEY, TimedSampler, build_sampler

SAMPLERS = ("ga", "nsga2", "tpe", "random", "cmaes")
SAMPLER_OPTIONS = {"nsga2": {"population_size": 10}}  # the GA's population size, for a fair GA-vs-GA
OVERHEAD_SAMPLERS = ("ga", "nsga2", "tpe", "random")
RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- samplers.py:begin -->", "<!-- samplers.py:end -->"


def quality(seeds: list[int], n_trials: int, budgets: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables, targets = [], []
    for name, function in FUNCTIONS.items():
        plan = ComparisonPlan(ProblemSource("function", name), SAMPLERS, tuple(seeds), n_trials,
                              f"bench/{name}", sampler_options=SAMPLER_OPTIONS)
        started = time.perf_counter()
        trials = run_comparison(plan)
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        table = best_at(trials, budgets)
        table.insert(0, "function", name)
        tables.append(table)
        reached = trials_to_target(trials, function.direction, function.target)
        overhead = trials.groupby("sampler")["sampler_s"].mean() * 1000
        for sampler, rows in reached.groupby("sampler", sort=False):
            targets.append({
                "function": name, "target": function.target, "sampler": sampler,
                "reached": f"{int(rows['trials_to_target'].notna().sum())}/{len(rows)}",
                "median_trials": rows["trials_to_target"].median(),
                "sampler_ms": overhead[sampler],
            })
    return pd.concat(tables, ignore_index=True), pd.DataFrame(targets)


def overhead(n_trials: int, storage_kind: str, sampler: str) -> dict[str, float]:
    """Mean sampler ms per trial in windows of the study; growth exponent between the windows."""
    function = FUNCTIONS["rosenbrock-mixed"]
    with tempfile.TemporaryDirectory() as folder:
        storage = None if storage_kind == "memory" else f"sqlite:///{folder}/overhead.db"
        if storage is not None:
            from hpo.storage import open_storage

            storage = open_storage(storage, heartbeat_interval=None)
        options = SAMPLER_OPTIONS.get(sampler, {})
        study = optuna.create_study(storage=storage, direction=function.direction,
                                    sampler=TimedSampler(build_sampler(sampler, options, 100)))
        started = time.perf_counter()
        study.optimize(function.objective, n_trials=n_trials)
        wall = time.perf_counter() - started
        seconds = np.array([t.system_attrs[SAMPLER_SECONDS_KEY] for t in study.trials])
    early = slice(n_trials // 10, n_trials // 5)
    late = slice(n_trials - n_trials // 10, n_trials)
    early_ms, late_ms = 1000 * seconds[early].mean(), 1000 * seconds[late].mean()
    early_n = (early.start + early.stop) / 2
    late_n = (late.start + late.stop) / 2
    return {
        "sampler": sampler, "storage": storage_kind,
        "ms_early": early_ms, "ms_late": late_ms, "ratio": late_ms / early_ms,
        "exponent": math.log(late_ms / early_ms) / math.log(late_n / early_n),
        "wall_s": wall,
    }


def markdown(quality_table: pd.DataFrame, targets: pd.DataFrame, overheads: pd.DataFrame,
             seeds: list[int], n_trials: int, minutes: float) -> str:
    lines = [
        BEGIN,
        "## Samplers: genetic algorithm vs NSGA-II, TPE, random, CMA-ES (`benchmarks/samplers.py`)",
        "",
        f"Command: `python benchmarks/samplers.py --write` — {time.strftime('%Y-%m-%d')}, {_machine()}, "
        f"Python {platform.python_version()}, Optuna {optuna.__version__}; took {minutes:.1f} min.",
        f"Storage: in-memory for the quality runs; {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}), "
        f"{n_trials} trials per study, the best within the first N trials read off the same studies.",
        "GA = `hpo.samplers.genetic.GeneticSampler` with its defaults (population 10); NSGA-II = Optuna's "
        "`NSGAIISampler` on the single objective with population 10 (its default, 50, is pure random search for "
        "the first 50 trials); TPE, random and CMA-ES with Optuna's defaults (CMA-ES draws categorical "
        "parameters at random). Sampler seeds 100.. (the GA's defaults came from a sweep on seeds 0..5).",
        "",
        "### Best value within N trials (mean ± sd over seeds; lower is better except classifier-surrogate)",
        "",
    ]
    budgets = sorted(quality_table["budget"].unique())
    header = "| function | sampler | " + " | ".join(f"N={b}" for b in budgets) + " |"
    lines += [header, "|" + "---|" * (2 + len(budgets))]
    for (function, sampler), rows in quality_table.groupby(["function", "sampler"], sort=False):
        cells = [f"{r['mean']:.4g} ± {r['std']:.2g}" for _, r in rows.sort_values("budget").iterrows()]
        lines.append(f"| {function} | {sampler} | " + " | ".join(cells) + " |")
    lines += ["", f"### Reaching the target within {n_trials} trials, and the sampler's own time", "",
              "| function | target | sampler | seeds reaching it | median trials needed | sampler ms/trial |",
              "|---|---|---|---|---|---|"]
    for _, row in targets.iterrows():
        median = "—" if pd.isna(row["median_trials"]) else f"{row['median_trials']:.0f}"
        lines.append(f"| {row['function']} | {row['target']:g} | {row['sampler']} | {row['reached']} | "
                     f"{median} | {row['sampler_ms']:.2f} |")
    n = int(overheads.attrs.get("n_trials", 1000))
    lines += [
        "", f"### Sampler time per trial along a {n}-trial study (rosenbrock-mixed)", "",
        f"Mean ms inside the sampler per trial at trials {n // 10}-{n // 5} and {n - n // 10}-{n}; exponent = "
        "log(ratio)/log(trial-number ratio): 0 is constant, 1 is linear growth.", "",
        "| sampler | storage | ms/trial early | ms/trial late | late/early | growth exponent | study wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, row in overheads.iterrows():
        lines.append(f"| {row['sampler']} | {row['storage']} | {row['ms_early']:.2f} | {row['ms_late']:.2f} | "
                     f"{row['ratio']:.2f} | {row['exponent']:.2f} | {row['wall_s']:.1f} |")
    lines += ["", END]
    return "\n".join(lines)


def _machine() -> str:
    return f"{machine()}, load average {os.getloadavg()[0]:.1f} at the end of the run"


def write_section(text: str) -> None:
    """Replace this script's section of RESULTS.md (or append it), leaving the rest untouched."""
    content = RESULTS.read_text(encoding="utf-8")
    if BEGIN in content and END in content:
        head, rest = content.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        content = head + text + tail
    else:
        content = content.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(content, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--overhead-trials", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 60 trials, 200-trial overhead")
    parser.add_argument("--write", action="store_true", help="replace this script's section in RESULTS.md")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.quick:
        args.seeds, args.trials, args.overhead_trials = 2, 60, 200
    seeds = list(range(100, 100 + args.seeds))
    budgets = sorted({b for b in (50, 100, 200) if b <= args.trials} | {args.trials})
    started = time.perf_counter()
    print("quality:", file=sys.stderr)
    quality_table, targets = quality(seeds, args.trials, budgets)
    print("overhead:", file=sys.stderr)
    rows = []
    for storage_kind, samplers in (("memory", OVERHEAD_SAMPLERS), ("sqlite", OVERHEAD_SAMPLERS)):
        for sampler in samplers:
            rows.append(overhead(args.overhead_trials, storage_kind, sampler))
            print(f"  {sampler} {storage_kind}: {rows[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    overheads = pd.DataFrame(rows)
    overheads.attrs["n_trials"] = args.overhead_trials
    text = markdown(quality_table, targets, overheads, seeds, args.trials,
                    (time.perf_counter() - started) / 60)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
