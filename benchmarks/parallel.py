"""Parallel efficiency on the real objective: K worker processes on K cores against 1 worker, same trials.

Usage (repository root, venv active)::

    nice python benchmarks/parallel.py                 # K = 1 and K = all cores, + K workers oversubscribed
    python benchmarks/parallel.py --trials 4 --epochs 2 --top-k 300    # a quick check
    python benchmarks/parallel.py --workers 1 2 4 --trials 24          # a bigger machine

Each configuration runs ``hpo.launcher.launch`` (what ``hpo run --workers K`` does) on a classifier
study (``studies/classifier.toml``'s model and metric) whose parameters are pinned to the unit trial of
``benchmarks/overhead.py`` except the learning rate (random sampler, no pruning, early stopping off), so
every trial does the same work and the configurations differ only in how workers share the cores.

Rows: 1 worker x 1 thread (one core: the baseline), then for each K the launcher's own split (K workers x
``cores // K`` threads; K = 1 is ``hpo run --workers 1`` using every core through threads), and K workers
x all cores each ("oversubscribed": what the thread setting is worth).

* **steady throughput**: finished trials / (last trial's end - first trial's start), storage timestamps;
  worker start-up (imports, cached data set) is outside this window.
* **wall throughput**: trials / the whole ``launch`` call (start-up included).
* **efficiency** = throughput / (cores used x throughput of 1 worker on 1 core); K workers on K cores
  should reach >= 0.85.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._perf import UNIT_TRIAL_PARAMS, build_spec, conditions, machine, study_content  # noqa: E402


def study_file(args: argparse.Namespace, work: Path) -> Path:
    content = study_content("classifier")
    fixed = {k: v for k, v in UNIT_TRIAL_PARAMS.items() if k != "lr"}
    content.update(
        name="parallel", device="cpu", n_trials=args.trials,
        data={"preset": args.preset, "top_k_genes": args.top_k, "cache_dir": args.cache_dir},
        fixed={**content["fixed"], **fixed, "max_epochs": args.epochs, "early_stopping_patience": 0},
        space={"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
        sampler={"name": "random", "seed": 0},
        pruner={"name": "none"},
    )
    path = work / "parallel.toml"
    build_spec(content, path)  # validates
    return path


def run_configuration(path: Path, workers: int, url: str, *, threads: int | None = None) -> dict[str, Any]:
    """``workers`` processes through the launcher; ``threads`` per worker replaces the launcher's split."""
    import optuna
    from optuna.trial import TrialState

    from hpo.run import _launcher as launcher

    cores = launcher.cpu_count()
    split = max(1, cores // workers)
    threads = threads or split
    name = f"parallel-{workers}x{threads}"
    original = launcher.worker_environment
    if threads != split:
        launcher.worker_environment = lambda index, n, gpus, _cores: original(index, 1, gpus, threads)
    try:
        started = time.perf_counter()
        result = launcher.launch(path, workers=workers, storage_url=url, study_name=name, poll_seconds=0.5)
        wall = time.perf_counter() - started
    finally:
        launcher.worker_environment = original
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    window = max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "cores_used": min(cores, workers * threads),
        "oversubscribed": workers * threads > cores,
        "finished": len(finished),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "exit_codes": result.exit_codes,
        "steady_trials_per_s": len(finished) / window.total_seconds(),
        "wall_trials_per_s": len(finished) / wall,
        "wall_s": wall,
        "train_seconds_mean": sum(t.user_attrs.get("train_seconds", 0.0) for t in finished) / len(finished),
    }


def main() -> None:
    from hpo.run._launcher import cpu_count

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="K values (default: 1 and all cores)")
    parser.add_argument("--trials", type=int, default=12, help="trials per configuration (default 12)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8)")
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--top-k", type=int, default=5000, help="top_k_genes (default 5000, as the study file)")
    parser.add_argument("--cache-dir", default=str(_HERE.parent / "hpo-runs" / "cache"))
    parser.add_argument("--no-oversubscribed", action="store_true", help="skip the all-cores-per-worker row")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from data_pipeline import prepare_dataset
    from hpo.study import load_study_file

    cores = cpu_count()
    counts = args.workers or sorted({1, cores})
    work = Path(tempfile.mkdtemp(prefix="hpo-parallel-"))
    before = conditions()
    rows: list[dict[str, Any]] = []
    try:
        path = study_file(args, work)
        data = prepare_dataset(load_study_file(path).data)
        url = f"sqlite:///{work / 'optuna.db'}"
        import os

        os.environ["HPO_ARTIFACTS"] = str(work / "artifacts")
        rows.append(run_configuration(path, 1, url, threads=1))
        for k in counts:
            if not (k == 1 and cores == 1):  # 1 x 1 already ran
                rows.append(run_configuration(path, k, url))
        if not args.no_oversubscribed and max(counts) > 1:
            rows.append(run_configuration(path, max(counts), url, threads=cores))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = conditions()

    base = rows[0]  # 1 worker x 1 thread
    print(f"Machine: {machine()}; cores usable: {cores}")
    print(f"Before: {before}; after: {after}")
    print(f"Study: classifier, {args.preset} preset, top_k_genes={args.top_k} ({data.n_features} genes), "
          f"{args.epochs} epochs per trial, {args.trials} trials per row, SQLite storage\n")
    print("| workers x threads | cores used | finished / failed | mean training per trial | steady trials/s | "
          "speed-up vs 1 x 1 | efficiency | wall trials/s (with start-up) | wall speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        speedup = r["steady_trials_per_s"] / base["steady_trials_per_s"]
        wall_speedup = r["wall_trials_per_s"] / base["wall_trials_per_s"]
        label = f"{r['workers']} x {r['threads_per_worker']}" + (" (oversubscribed)" if r["oversubscribed"] else "")
        print(f"| {label} | {r['cores_used']} | {r['finished']} / {r['failed']} | {r['train_seconds_mean']:.2f} s | "
              f"{r['steady_trials_per_s']:.3f} | {speedup:.2f} | **{speedup / r['cores_used']:.2f}** | "
              f"{r['wall_trials_per_s']:.3f} | {wall_speedup:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "before": before, "after": after, "rows": rows},
                                              indent=2, default=str))


if __name__ == "__main__":
    main()
