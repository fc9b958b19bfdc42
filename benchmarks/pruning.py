"""Pruning: compute each pruner saves against no pruning, and the best value each reaches, on the classifier study.

Usage (repository root, venv active)::

    nice python benchmarks/pruning.py                         # 5 pruners x 16 trials, one seed
    python benchmarks/pruning.py --trials 30 --seeds 42 43 44 --max-epochs 30    # a longer comparison
    python benchmarks/pruning.py --trials 4 --preset tiny --top-k 200 --max-epochs 4   # a quick check

``studies/classifier.toml`` as it is (TPE, its search space, early stopping, balanced accuracy),
except the data size (``--preset``, ``--top-k``), ``max_epochs`` and the pruner, which is replaced
in turn by each of ``--pruners``. Every study starts from the same TPE seed, so the first
``n_startup_trials`` (10) trials draw the same configurations; after that the sampler sees what
each pruner let through. One worker (``hpo.worker.run_worker``) with all cores runs each study.

* **epochs run**: the sum over trials of the epochs each trained (``steps_run``): the compute;
* **training time**: the sum of the trials' ``train_seconds``;
* **saved**: 1 - (epochs with the pruner) / (epochs without);
* **best**: the study's best validation balanced accuracy.
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
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._perf import build_spec, conditions, machine, study_content  # noqa: E402


def pruner_tables(max_epochs: int) -> dict[str, dict[str, Any]]:
    """The pruners compared, with options that suit a ``max_epochs``-epoch learning curve."""
    warmup = max(1, max_epochs // 4)
    return {
        "none": {"name": "none"},
        "median": {"name": "median", "n_startup_trials": 5, "n_warmup_steps": warmup},
        "percentile": {"name": "percentile", "percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": warmup},
        "successive_halving": {"name": "successive_halving", "min_resource": warmup, "reduction_factor": 3},
        "hyperband": {"name": "hyperband", "min_resource": warmup, "max_resource": max_epochs, "reduction_factor": 3},
    }


def run_study(args: argparse.Namespace, pruner: dict[str, Any], seed: int, work: Path) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from hpo.run import run_worker

    content = study_content("classifier")
    name = f"pruning-{pruner['name']}-seed{seed}"
    content.update(
        name=name, n_trials=args.trials, device="cpu", pruner=pruner,
        data={"preset": args.preset, "top_k_genes": args.top_k, "cache_dir": args.cache_dir},
        fixed={**content["fixed"], "max_epochs": args.max_epochs},
        sampler={**content["sampler"], "seed": seed},
    )
    spec = build_spec(content, work / f"{name}.toml")
    url = f"sqlite:///{work / 'optuna.db'}"
    started = time.perf_counter()
    # worker_index 0: the sampler seed is the study file's seed (without an index it would be mixed with the PID)
    run_worker(spec, storage_url=url, study_name=name, worker_index=0, num_threads=args.threads)
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return {
        "pruner": pruner["name"],
        "seed": seed,
        "trials": len(trials),
        "complete": len(complete),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
        "epochs": sum(int(t.user_attrs.get("steps_run", 0)) for t in trials),
        "train_seconds": sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in trials),
        "wall_seconds": wall,
        "best": study.best_value if complete else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16, help="trials per study (default 16)")
    parser.add_argument("--max-epochs", type=int, default=16, help="max_epochs of every trial (default 16)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="TPE seeds (default 42, the study's)")
    parser.add_argument("--pruners", nargs="+", default=list(pruner_tables(1)))
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--top-k", type=int, default=1000, help="top_k_genes (default 1000)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache-dir", default=str(_HERE.parent / "hpo-runs" / "cache"))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    tables = pruner_tables(args.max_epochs)
    unknown = [p for p in args.pruners if p not in tables]
    if unknown:
        parser.error(f"unknown pruner(s) {unknown}; expected some of {list(tables)}")
    work = Path(tempfile.mkdtemp(prefix="hpo-pruning-"))
    os.environ["HPO_ARTIFACTS"] = str(work / "artifacts")
    before = conditions()
    try:
        rows = [run_study(args, tables[p], seed, work) for seed in args.seeds for p in args.pruners]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = conditions()

    print(f"Machine: {machine()}")
    print(f"Before: {before}; after: {after}")
    print(f"classifier study: {args.preset} preset, top_k_genes={args.top_k}, max_epochs={args.max_epochs} "
          f"(early stopping patience as in the study file), {args.trials} trials per study, seeds {args.seeds}, "
          f"{args.threads} thread(s)\n")
    print("| pruner | options | complete / pruned / failed | epochs run | saved (epochs) | training time | "
          "saved (time) | best val balanced accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for pruner in args.pruners:
        mine = [r for r in rows if r["pruner"] == pruner]
        base = [r for r in rows if r["pruner"] == "none"]
        epochs = sum(r["epochs"] for r in mine)
        seconds = sum(r["train_seconds"] for r in mine)
        saved_epochs = f"{1 - epochs / sum(r['epochs'] for r in base):.0%}" if base else "n/a"
        saved_time = f"{1 - seconds / sum(r['train_seconds'] for r in base):.0%}" if base else "n/a"
        options = ", ".join(f"{k}={v}" for k, v in tables[pruner].items() if k != "name") or "-"
        best = " / ".join(f"{r['best']:.3f}" for r in mine)
        print(f"| {pruner} | {options} | {sum(r['complete'] for r in mine)} / {sum(r['pruned'] for r in mine)} / "
              f"{sum(r['failed'] for r in mine)} | {epochs} | {saved_epochs} | {seconds:.0f} s | {saved_time} | {best} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "before": before, "after": after, "rows": rows},
                                              indent=2, default=str))


if __name__ == "__main__":
    main()
