"""Parallel efficiency as users meet it: ``hpo run --workers 2`` vs ``--workers 1``, next to plain Optuna.

Usage (repository root, venv active)::

    python benchmarks/parallel.py            # full preset, 5,000 genes, 6 epochs, 8 trials, 2 rounds
    python benchmarks/parallel.py --quick    # small preset, 4 epochs, 6 trials, 1 round (a few minutes)
    python benchmarks/parallel.py --workers 1 2 4

Per worker count K, two ways on the same objective (``benchmarks/_anchor.py``): ``python -m hpo.cli run
STUDY --workers K`` as shipped (1 thread per worker by default), and plain Optuna's multi-process pattern,
K processes of ``create_study(load_if_exists=True).optimize(objective, n_trials=N/K)`` sharing one SQLite
storage. Every run is timed whole, start-up included. Rows alternate round by round.

Reported: wall time, trials per minute, the speed-up over the same way's 1-worker run, and hpo ÷ plain.
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
    parser.add_argument("--quick", action="store_true", help="small preset, 4 epochs, 6 trials, 1 round")
    parser.add_argument("--preset", choices=list(PRESETS), default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    preset = args.preset or ("small" if args.quick else "full")
    epochs = args.epochs or (4 if args.quick else 6)
    n_trials = args.trials or (6 if args.quick else 8)
    rounds = args.rounds or (1 if args.quick else 2)
    counts = sorted(set(args.workers) | {1})

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"machine: {machine()}\nbefore: {conditions()}", flush=True)
    walls: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-parallel-") as tmp:
        folder = Path(tmp)
        data, fixed = data_settings(preset, epochs, folder / "cache")
        prepare(data)
        for round_ in range(rounds):
            for k in counts:
                for way, run in (("hpo run", hpo_run), ("plain Optuna", plain_optuna)):
                    result = run(folder, f"{way.split()[0]}-{k}-{round_}", n_trials, k, data, fixed)
                    walls.setdefault((way, k), []).append(result.wall_s)
                    print(f"  round {round_ + 1}: {way}, {k} worker(s): {result.wall_s:.1f} s "
                          f"(start-up {result.startup_s:.1f} s, median trial {result.median_trial_s:.2f} s)", flush=True)
    print(f"after: {conditions()}\n")
    print(f"### Parallel efficiency: `hpo run --workers K` vs plain Optuna ({datetime.date.today()}, "
          f"{os.cpu_count()} cores)\n")
    print(f"Classifier, {preset} preset, {epochs} epochs, {n_trials} trials per run, 1 thread per process, SQLite, "
          f"start-up included, median of {rounds} round(s).\n")
    print("| workers | hpo run: wall (s) | trials/min | speed-up | plain Optuna: wall (s) | trials/min | speed-up "
          "| hpo ÷ plain (wall) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    wall = {key: statistics.median(values) for key, values in walls.items()}
    for k in counts:
        h, p = wall[("hpo run", k)], wall[("plain Optuna", k)]
        print(f"| {k} | {h:.1f} | {60 * n_trials / h:.1f} | {wall[('hpo run', 1)] / h:.2f}x | {p:.1f} | "
              f"{60 * n_trials / p:.1f} | {wall[('plain Optuna', 1)] / p:.2f}x | {h / p:.3f} |")


if __name__ == "__main__":
    main()
