"""``hpo train``: train one model outside any study (or retrain an exported config) and print its metrics.

The work is :func:`hpo.results.train_and_report` and :func:`hpo.results.retrain`; this module parses and prints.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from hpo.cli._data import RENAMED_FOR_MODEL_COMMANDS, add_data_options, config_from_args
from hpo.cli._options import add_force_argument, claim_output_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one model outside any study and report its validation metrics",
        description=(
            "Train one model on the prepared data set with its defaults (override any with --set), print "
            "the metrics and write metrics.json, per-tissue reports and the fitted model to --out."
        ),
    )
    parser.add_argument("--model", dest="model_name", metavar="NAME", help="model name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the models and their parameters, then exit")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="a model parameter (repeatable); VALUE is a TOML literal, else a string, e.g. lr=3e-4, hidden_sizes=[512,128]",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default $HPO_HOME/train/<model>-<time>)")
    add_force_argument(parser, "results in the folder")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="model seed (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for training (default: torch's)")
    parser.add_argument(
        "--config", metavar="FILE",
        help="retrain a configuration written by `hpo export` (model, parameters, data, seed); "
             "default: train on train+val, evaluate once on test",
    )
    parser.add_argument("--train-split", default=None, choices=("train", "train+val"),
                        help="rows to train on (default train, or train+val with --config; train+val turns early stopping off)")
    parser.add_argument("--eval-split", dest="eval_splits", action="append", default=None,
                        choices=("train", "val", "test", "train+val"),
                        help="split(s) to evaluate (repeatable; default val)")
    parser.add_argument(
        "--retrain-mode", choices=("schedule", "fold-average"), default=None,
        help="with --config, how a PyTorch model retrains on train+val: fold-average (the default for a "
             "cross-validated trial: one model per CV fold of train+val, each early-stopped on its held-out fold, "
             "predictions averaged) or schedule (the default otherwise: one model, the trial's learning-rate "
             "schedule, stopped at its chosen epoch)",
    )
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="with --config: do not retrain the study's reference configuration (the defaults) too")
    add_data_options(parser, title="data settings (as `hpo data prepare`; default: the full synthetic preset)",
                     renamed=RENAMED_FOR_MODEL_COMMANDS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.results import train_and_report
    from hpo.storage import run_directory
    from hpo.study import parse_overrides

    if args.config:
        return _retrain(args)
    if args.retrain_mode:
        raise ValueError("--retrain-mode applies to a retrain: give --config FILE (written by hpo export)")
    if args.list:
        _print_models()
        return 0
    if not args.model_name:
        raise ValueError("give --model NAME (or --list to see the models)")
    out_dir = claim_output_folder(args.out, force=args.force) if args.out else (
        run_directory() / "train" / f"{args.model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    report = train_and_report(
        args.model_name, parse_overrides(args.assignments), config_from_args(args), out_dir,
        train_split=args.train_split or "train", eval_splits=tuple(args.eval_splits or ("val",)),
        device=args.device, seed=args.seed, num_threads=args.threads,
    )
    _print_report(report)
    return 0


def _retrain(args: argparse.Namespace) -> int:
    """``hpo train --config FILE``: retrain an exported configuration and say whether it reproduced."""
    from hpo.results import (
        REPRODUCTION_TOLERANCE,
        copy_config,
        cross_validated_trial,
        read_config,
        record_final_model,
        reference_gain_text,
        resolve_retrain_mode,
        retrain,
        retrain_step_logger,
    )
    from hpo.storage import run_directory
    from hpo.study import parse_overrides
    from models import get_spec

    config = read_config(args.config)
    overrides = parse_overrides(args.assignments)
    if overrides:  # --set still overrides single parameters of the exported config
        config = {**config, "params": {**config["params"], **overrides}}
    train_split = args.train_split or "train+val"
    eval_splits = tuple(args.eval_splits or (("val",) if train_split == "train" else ("test",)))
    mode = resolve_retrain_mode(config["model"], args.retrain_mode, train_split, cross_validated_trial(config))
    source = config.get("source", {})
    if source.get("val_split_warning"):
        print(f"warning: the study ranked its trials on a small split: {source['val_split_warning']}")
    out_dir = claim_output_folder(args.out, force=args.force) if args.out else (
        run_directory() / "final"
        / f"{source.get('study', config['model'])}-trial{source.get('trial', 'x')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    print(
        f"retraining {config['model']} from {args.config} (study {source.get('study', '?')}, trial {source.get('trial', '?')}) "
        f"on {train_split}, evaluating {', '.join(eval_splits)}"
        + (f" ({mode} retrain)" if train_split == "train+val" and get_spec(config["model"]).family == "torch" else "")
    )
    threads = args.threads
    if threads is None and train_split == "train" and source.get("threads"):
        threads = int(source["threads"])  # the trial's thread count: reproduces it bit for bit on CPU
    result = retrain(
        config, out_dir, train_split=train_split, eval_splits=eval_splits,
        device=None if args.device in (None, "auto") else args.device, num_threads=threads,
        epochs_from_trial=not {"max_epochs", "stop_epoch"} & set(overrides),
        on_step=retrain_step_logger(config["model"], train_split), reference=args.reference,
        mode=mode,
    )
    copy_config(args.config, out_dir)
    _print_report(result.report)
    if result.reference is not None:
        print(f"on validation: {reference_gain_text(config)}")
        _print_reference(result.report, result.reference)
    if not result.fingerprint_matches:
        print(f"warning: data fingerprint {result.data_fingerprint[:12]} differs from the study's: inputs changed")
    if result.reproduced is not None:
        metric, trial_value, value = result.reproduced
        verdict = "reproduced" if abs(value - trial_value) <= REPRODUCTION_TOLERANCE else "NOT reproduced"
        print(f"{verdict}: {metric} {value:.4f} vs the trial's {trial_value:.4f} (tolerance {REPRODUCTION_TOLERANCE})")
    print(f"final model: {record_final_model(config, result, train_split=train_split)}")
    return 0


def _print_reference(report: Any, reference: Any) -> None:
    """The reference configuration's (the defaults') metrics beside the final model's, and the gain."""
    if reference is report:
        print("the reference configuration (the defaults) is the final model: tuning found nothing better")
        return
    names = [name for name in report.metrics if name in reference.metrics]
    width = max((len(name) for name in names), default=0)
    print(f"  {'':<{width}}  {'final':>8}  {'defaults':>8}  {'gain':>8}  (defaults: {reference.out_dir})")
    for name in names:
        value, base = report.metrics[name], reference.metrics[name]
        gain = base - value if name.endswith(("_loss", "_mse")) else value - base
        print(f"  {name:<{width}}  {value:8.4f}  {base:8.4f}  {gain:+8.4f}")


def _print_report(report: Any) -> None:
    print(
        f"{report.model}: {report.n_steps} step(s) in {report.train_seconds:.1f}s on {report.device}, "
        f"{report.n_parameters:,} parameters"
    )
    width = max(len(name) for name in report.metrics)
    for name, value in report.metrics.items():
        print(f"  {name:<{width}}  {value:.4f}")
    print(f"results: {report.out_dir}")


def _print_models() -> None:
    from models import available_models, get_spec

    for name in available_models():
        spec = get_spec(name)
        print(f"{name} ({spec.family}, {spec.task}): {spec.description}")
        print("    " + ", ".join(f"{key}={value!r}" for key, value in spec.defaults.items()))
