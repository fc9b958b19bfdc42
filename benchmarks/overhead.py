"""Framework overhead as users meet it: a fresh ``hpo run --workers 1`` against plain Optuna, same objective.

Usage (repository root, venv active)::

    python benchmarks/overhead.py            # full preset, 5,000 genes, 6 epochs, 8 trials, 3 pairs
    python benchmarks/overhead.py --quick    # small preset, 4 epochs, 4 trials, 1 pair (a few minutes)

Both sides are fresh processes timed from start to end, start-up included (``benchmarks/_anchor.py``):
``python -m hpo.cli run STUDY --workers 1`` (the study file pins the classifier's parameters but
``dropout``, drawn by the random sampler in a narrow range; no pruner) and the anchor, plain Optuna
(``optuna.create_study(...).optimize(objective, n_trials)``, the objective training the same model on the same
cached data set with the same parameters). 1 thread each, SQLite storage each. The two alternate (ABAB...,
``--pairs`` pairs) so that a drifting machine hits both alike.

Reported: wall time per run and its ratio (hpo ÷ plain, per pair and in total); start-up (process start to
the first trial's start); the median trial (the trial's own start to end: the framework inside a trial).
Prints a Markdown table ready for benchmarks/RESULTS.md, with the machine and its load.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402

from benchmarks._anchor import PRESETS, data_settings, hpo_run, plain_optuna, prepare  # noqa: E402
from benchmarks._perf import conditions, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small preset, 4 epochs, 4 trials, 1 pair")
    parser.add_argument("--preset", choices=list(PRESETS), default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=None)
    args = parser.parse_args()
    preset = args.preset or ("small" if args.quick else "full")
    epochs = args.epochs or (4 if args.quick else 6)
    n_trials = args.trials or (4 if args.quick else 8)
    pairs = args.pairs or (1 if args.quick else 3)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"machine: {machine()}\nbefore: {conditions()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpo-overhead-") as tmp:
        folder = Path(tmp)
        data, fixed = data_settings(preset, epochs, folder / "cache")
        prepare(data)
        for pair in range(pairs):
            hpo = hpo_run(folder, f"hpo-{pair}", n_trials, 1, data, fixed)
            plain = plain_optuna(folder, f"plain-{pair}", n_trials, 1, data, fixed)
            rows.append((hpo, plain))
            print(f"  pair {pair + 1}: hpo run {hpo.wall_s:.1f} s (start-up {hpo.startup_s:.1f} s, trial "
                  f"{hpo.median_trial_s:.2f} s), plain Optuna {plain.wall_s:.1f} s (start-up {plain.startup_s:.1f} s, "
                  f"trial {plain.median_trial_s:.2f} s): {hpo.wall_s / plain.wall_s:.3f}", flush=True)
    print(f"after: {conditions()}\n")
    total = sum(h.wall_s for h, _ in rows) / sum(p.wall_s for _, p in rows)
    per_pair = statistics.median(h.wall_s / p.wall_s for h, p in rows)
    print(f"### Overhead: `hpo run --workers 1` vs plain Optuna ({datetime.date.today()}, {os.cpu_count()} cores)\n")
    print(f"Classifier, {preset} preset, {epochs} epochs, {n_trials} trials per run, 1 thread, SQLite, fresh "
          f"processes (start-up included), {pairs} interleaved pair(s).\n")
    print("| run | hpo run: wall (s) | start-up (s) | median trial (s) | plain Optuna: wall (s) | start-up (s) "
          "| median trial (s) | ratio (wall) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for index, (h, p) in enumerate(rows, 1):
        print(f"| {index} | {h.wall_s:.1f} | {h.startup_s:.1f} | {h.median_trial_s:.2f} | {p.wall_s:.1f} | "
              f"{p.startup_s:.1f} | {p.median_trial_s:.2f} | {h.wall_s / p.wall_s:.3f} |")
    trial_ratio = statistics.median(h.median_trial_s / p.median_trial_s for h, p in rows)
    print(f"\nOverall: **{total:.3f}** (total wall, hpo ÷ plain; median of pairs {per_pair:.3f}); "
          f"per trial, start-up excluded: {trial_ratio:.3f}.")


if __name__ == "__main__":
    main()
