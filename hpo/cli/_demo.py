"""``hpo demo`` (what ``make demo`` runs): prepare -> a short study with 2 workers -> export -> retrain -> test.

Uses ``studies/demo.toml`` on the embedded synthetic data; everything lands in the run
directory (``$HPO_HOME``, default ``./hpo-runs``) and the last lines say where, and how
to browse the study in optuna-dashboard.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hpo.cli._options import add_storage_argument

DEMO_STUDY = Path(__file__).resolve().parent.parent.parent / "studies" / "demo.toml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job end to end: prepare data, a short 2-worker study, export, retrain, test metrics",
    )
    parser.add_argument("--study-file", default=str(DEMO_STUDY), help="study file (default studies/demo.toml)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--n-trials", type=int, help="finished trials (default: the study file's, 12)")
    add_storage_argument(parser)
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="override a study-file key, e.g. --set data.preset=small",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from data_pipeline import prepare_dataset
    from hpo.cli._progress import StatusPrinter, final_lines
    from hpo.results import copy_config, export_trial, retrain, write_config
    from hpo.run import launch
    from hpo.storage import open_storage, redact, run_directory
    from hpo.study import load_study_file, parse_overrides

    started = time.monotonic()
    overrides = parse_overrides(args.assignments)
    if args.n_trials:
        overrides["n_trials"] = args.n_trials
    spec = load_study_file(args.study_file, overrides)
    name = f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    out = run_directory() / "demo" / name

    print(f"[1/5] preparing data ({spec.data.source}, preset {spec.data.preset}, top {spec.data.top_k_genes} genes)", flush=True)
    data = prepare_dataset(spec.data)
    print(f"      {data.X_train.shape[0]}/{data.X_val.shape[0]}/{data.X_test.shape[0]} train/val/test samples, "
          f"{data.n_features} genes, {data.n_classes} tissues ({_since(started)})", flush=True)

    print(f"[2/5] study {name}: {spec.n_trials} {spec.model} trials, {args.workers} workers, "
          f"{spec.sampler.name} sampler, {spec.pruner.name} pruner", flush=True)
    show = StatusPrinter(args.workers, write=lambda line: print("      " + line, flush=True))
    result = launch(
        args.study_file, workers=args.workers, overrides=overrides, storage_url=args.storage,
        study_name=name, on_progress=show, poll_seconds=2.0,
    )
    if not result.ok:
        print(f"hpo demo: {result.failure or f'a worker failed (exit codes {result.exit_codes})'}")
        return 1

    print("[3/5] exporting the best configuration", flush=True)
    import optuna

    study = optuna.load_study(study_name=name, storage=open_storage(result.storage_url, heartbeat_interval=None))
    config = export_trial(study, storage_url=redact(result.storage_url))
    best_file = write_config(config, out / "best.toml")
    source = config["source"]
    print(f"      trial {source['trial']}: {source['metric']} = {source['value']:.4f} -> {best_file}", flush=True)

    print("[4/5] retraining it on train+val", flush=True)
    final = retrain(config, out / "final", train_split="train+val", eval_splits=("test",),
                    on_step=lambda step, metrics: None)  # no per-epoch lines here
    copy_config(best_file, out / "final")

    print(f"[5/5] held-out test metrics of the final model ({_since(started)} in all)", flush=True)
    for metric, value in final.metrics.items():
        print(f"      {metric:<24} {value:.4f}")
    print()
    for line in final_lines(result, bool(args.storage), best_config=str(best_file)):
        print(line)
    print(f"final:   {out / 'final'} (metrics.json, report_test.json, model/)")
    return 0


def _since(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"
