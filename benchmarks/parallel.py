"""Parallel efficiency on the real objective: K worker processes on K cores against 1 worker, same trials.

Usage (repository root, venv active)::

    nice python benchmarks/parallel.py                 # K = 1 and K = all cores, + K workers oversubscribed
    python benchmarks/parallel.py --trials 4 --epochs 2 --top-k 300    # a quick check
    python benchmarks/parallel.py --workers 1 2 4 --trials 24          # a bigger machine

Each configuration runs ``hpo.launcher.launch`` (what ``hpo run --workers K`` does) on a classifier
study (``studies/classifier.toml``'s model and metric) whose parameters are pinned to the unit trial of
``benchmarks/overhead.py`` except the learning rate (random sampler, no pruning, early stopping off), so
every trial does the same work and the configurations differ only in how many workers share the cores.
The launcher gives each of K workers ``cores // K`` threads; the "oversubscribed" row gives every
worker all cores instead, to show what that setting is worth.

* **steady throughput**: finished trials / (last trial's end - first trial's start), storage timestamps;
  worker start-up (imports, cached data set) is outside this window.
* **wall throughput**: trials / the whole ``launch`` call (start-up included).
* **speed-up** = throughput(K) / throughput(1 worker), **efficiency** = speed-up / K (target >= 0.85).
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


def run_configuration(path: Path, workers: int, url: str, *, oversubscribe: bool) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from hpo import launcher

    name = f"parallel-k{workers}{'-over' if oversubscribe else ''}"
    original = launcher.worker_environment
    if oversubscribe:  # every worker believes it is alone: all cores' threads each
        launcher.worker_environment = lambda index, n, gpus, cores: original(index, 1, gpus, cores)
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
        "threads_per_worker": launcher.cpu_count() if oversubscribe else max(1, launcher.cpu_count() // workers),
        "oversubscribed": oversubscribe,
        "finished": len(finished),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "exit_codes": result.exit_codes,
        "steady_trials_per_s": len(finished) / window.total_seconds(),
        "wall_trials_per_s": len(finished) / wall,
        "wall_s": wall,
        "train_seconds_mean": sum(t.user_attrs.get("train_seconds", 0.0) for t in finished) / len(finished),
    }


def main() -> None:
    from hpo.launcher import cpu_count

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="K values (default: 1 and all cores)")
    parser.add_argument("--trials", type=int, default=12, help="trials per configuration (default 12)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8)")
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--top-k", type=int, default=5000, help="top_k_genes (default 5000, as the study file)")
    parser.add_argument("--cache-dir", default=str(_HERE.parent / "hpo-runs" / "cache"))
    parser.add_argument("--no-oversubscribed", action="store_true", help="skip the all-threads-per-worker row")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from data_pipeline import prepare_dataset
    from hpo.studyfile import load_study_file

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
        for k in counts:
            rows.append(run_configuration(path, k, url, oversubscribe=False))
        if not args.no_oversubscribed and max(counts) > 1:
            rows.append(run_configuration(path, max(counts), url, oversubscribe=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = conditions()

    base = next(r for r in rows if r["workers"] == 1 and not r["oversubscribed"]) if 1 in counts else rows[0]
    print(f"Machine: {machine()}; cores usable: {cores}")
    print(f"Before: {before}; after: {after}")
    print(f"Study: classifier, {args.preset} preset, top_k_genes={args.top_k} ({data.n_features} genes), "
          f"{args.epochs} epochs per trial, {args.trials} trials per row, SQLite storage\n")
    print("| workers x threads | finished / failed | mean training per trial | steady trials/s | speed-up | efficiency | "
          "wall trials/s (with start-up) | wall speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        speedup = r["steady_trials_per_s"] / base["steady_trials_per_s"]
        wall_speedup = r["wall_trials_per_s"] / base["wall_trials_per_s"]
        label = f"{r['workers']} x {r['threads_per_worker']}" + (" (oversubscribed)" if r["oversubscribed"] else "")
        print(f"| {label} | {r['finished']} / {r['failed']} | {r['train_seconds_mean']:.2f} s | "
              f"{r['steady_trials_per_s']:.3f} | {speedup:.2f} | **{speedup / r['workers']:.2f}** | "
              f"{r['wall_trials_per_s']:.3f} | {wall_speedup:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "before": before, "after": after, "rows": rows},
                                              indent=2, default=str))


if __name__ == "__main__":
    main()
