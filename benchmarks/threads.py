"""How many CPU threads a worker should train with: measured, not assumed.

Usage (repository root, venv active)::

    python benchmarks/threads.py            # tiny and small presets, 3 rounds
    python benchmarks/threads.py --quick    # tiny preset, 1 round (about a minute)

Three layouts of the same classifier study (fixed parameters, random sampler, SQLite), each a fresh
``python -m hpo.cli worker`` process as ``hpo run`` starts them:

* ``1 worker x 1 thread``, ``1 worker x 2 threads``: one worker, ``--threads 1`` / ``--threads 2``;
* ``2 workers x 1 thread``: two workers on one study, ``--threads 1`` each.

Per layout: the median trial time (the trial's start to its end, from the storage) and the throughput
(trials per minute from the first trial's start to the last trial's end: start-up excluded). Layouts
alternate round by round so that a drifting machine hits them alike; the load average is printed with
the table. ``hpo run``'s default thread count (``hpo/run/_launcher.py``, ``default_threads``) follows
what this shows; docs/performance.md gives the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import datetime
import os
import statistics
import subprocess
import tempfile
import time

from benchmarks._perf import ROOT, conditions, machine

LAYOUTS = {"1 worker x 1 thread": (1, 1), "1 worker x 2 threads": (1, 2), "2 workers x 1 thread": (2, 1)}

PRESETS = {
    # tiny: 180 samples x 300 genes, a 32-unit network (the test studies' size: trials of ~1 s)
    "tiny": {"data": {"preset": "tiny"}, "fixed": {"hidden_dim": 32, "latent_dim": 16, "max_epochs": 8}},
    # small preset, 2,000 genes, a 256-unit network: trials of several seconds
    "small": {"data": {"preset": "small", "top_k_genes": 2000},
              "fixed": {"hidden_dim": 256, "latent_dim": 64, "max_epochs": 8}},
}


def study_file(folder: Path, preset: str, n_trials: int, cache_dir: Path) -> Path:
    import tomli_w

    chosen = PRESETS[preset]
    content = {
        "name": "threads",
        "model": "classifier",
        "metric": "val_balanced_accuracy",
        "direction": "maximize",
        "n_trials": n_trials,
        "device": "cpu",
        "data": {**chosen["data"], "cache_dir": str(cache_dir)},
        "fixed": {**chosen["fixed"], "batch_size": 32, "n_layers": 1, "lr": 3e-3, "early_stopping_patience": 0},
        "space": {"dropout": {"type": "float", "low": 0.1, "high": 0.2}},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
    }
    path = folder / f"threads_{preset}.toml"
    path.write_text(tomli_w.dumps(content), encoding="utf-8")
    return path


def run_layout(path: Path, url: str, name: str, workers: int, threads: int) -> tuple[float, float]:
    """(median trial seconds, trials per minute) of one run of ``workers`` fresh worker processes."""
    import optuna

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HPO_NUM_THREADS"):
        env[variable] = str(threads)  # what hpo run sets for its workers
    command = [sys.executable, "-m", "hpo.cli", "worker", str(path), "--storage", url, "--study-name", name,
               "--threads", str(threads), "--trials-before", "0"]
    processes = [subprocess.Popen([*command, "--worker-index", str(i)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for i in range(workers)]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"worker failed ({process.returncode}): {' '.join(command)}")
    trials = optuna.load_study(study_name=name, storage=url).get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return statistics.median(seconds), 60.0 * len(trials) / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny preset, 1 round, 6 trials")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None, help="trials per run (default 12; 6 with --quick)")
    args = parser.parse_args()
    presets = args.presets or (["tiny"] if args.quick else ["tiny", "small"])
    rounds = args.rounds or (1 if args.quick else 3)
    n_trials = args.trials or (6 if args.quick else 12)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"machine: {machine()}\nbefore: {conditions()}", flush=True)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-threads-") as folder:
        folder_path = Path(folder)
        for preset in presets:
            path = study_file(folder_path, preset, n_trials, folder_path / "cache")
            url = f"sqlite:///{folder_path / f'{preset}.db'}"
            # the first run prepares and caches the data set (start-up: not in the figures)
            for round_ in range(rounds):
                for label, (workers, threads) in LAYOUTS.items():
                    started = time.perf_counter()
                    name = f"{preset}-{round_}-{workers}w{threads}t"
                    result = run_layout(path, url, name, workers, threads)
                    results.setdefault((preset, label), []).append(result)
                    print(f"  {preset} round {round_ + 1}: {label}: trial {result[0]:.2f} s, "
                          f"{result[1]:.1f} trials/min ({time.perf_counter() - started:.0f} s with start-up)", flush=True)
    print(f"after: {conditions()}\n")
    print(f"### Threads per worker ({datetime.date.today()}, {os.cpu_count()} cores)\n")
    print("| preset | layout | median trial (s) | trials / min | vs 1 worker x 1 thread |")
    print("|---|---|---:|---:|---:|")
    for preset in presets:
        base = statistics.median(r[1] for r in results[(preset, "1 worker x 1 thread")])
        for label in LAYOUTS:
            rows = results[(preset, label)]
            trial = statistics.median(r[0] for r in rows)
            rate = statistics.median(r[1] for r in rows)
            print(f"| {preset} | {label} | {trial:.2f} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
