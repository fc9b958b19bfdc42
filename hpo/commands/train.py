"""``hpo train``: train one model on the prepared data outside any study and report its metrics.

``train_and_report`` is the reusable core (retraining from an exported config
calls it too): train, evaluate on the asked splits, print, and write
``metrics.json``, a per-tissue report with the confusion matrix per split, and the
fitted model (``model/``, loadable with ``models.load_model``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.commands.data import RENAMED_FOR_MODEL_COMMANDS, add_data_options, config_from_args

logger = logging.getLogger(__name__)

# Data options whose names the train command uses for itself.
METRICS_FILE = "metrics.json"
MODEL_SUBDIRECTORY = "model"


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` -> ``(key, value)``; the value is read as a TOML literal, else JSON, else a plain string."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"--set {text!r}: expected KEY=VALUE")
    return key, parse_literal(raw)


def parse_literal(raw: str) -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def train_and_report(
    model_name: str,
    params: Mapping[str, Any],
    data_config: Any,
    out_dir: Path,
    *,
    train_split: str = "train",
    eval_splits: Sequence[str] = ("val",),
    device: str = "auto",
    seed: int = 0,
    num_threads: int | None = None,
    data: Any = None,
    print_summary: bool = True,
) -> dict[str, float]:
    """Train ``model_name`` with ``params`` on ``train_split``, evaluate ``eval_splits``, write and print the results.

    ``data`` may pass an already prepared data set (else ``prepare_dataset(data_config)``).
    Writes ``out_dir/metrics.json`` (metrics, parameters, history, data fingerprint,
    package versions), ``out_dir/report_<split>.json`` for classifiers (per-tissue
    precision/recall/F1/support and the confusion matrix) and ``out_dir/model/``.
    Returns the metrics, e.g. ``{"val_accuracy": ..., "val_macro_f1": ...}``.
    """
    from data_pipeline import prepare_dataset
    from hpo.provenance import package_versions
    from models import build_model, get_spec
    from models.metrics import classification_report

    spec = get_spec(model_name)
    model = build_model(model_name, params, device=device, seed=seed, num_threads=num_threads)
    data = data if data is not None else prepare_dataset(data_config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def on_step(step: int, step_metrics: Mapping[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in step_metrics.items() if isinstance(v, float))
        logger.info("%s step %d: %s", model_name, step, shown)

    started = time.perf_counter()
    model.fit(data, train_split=train_split, on_step=on_step)
    metrics: dict[str, float] = {}
    for split in eval_splits:
        metrics.update(model.evaluate(data, split))
        if spec.task == "classification":
            X, y = data.split(split)
            report = classification_report(y, model.predict(X), data.tissues)
            (out_dir / f"report_{split}.json").write_text(json.dumps(report, indent=2))
    model.save(out_dir / MODEL_SUBDIRECTORY)

    record = {
        "model": model_name,
        "params": model.params,
        "seed": seed,
        "device": model.device_,
        "train_split": train_split,
        "eval_splits": list(eval_splits),
        "metrics": metrics,
        "train_seconds": model.train_seconds_,
        "wall_seconds": time.perf_counter() - started,
        "n_steps": model.n_steps_,
        "best_epoch": getattr(model, "best_epoch_", None),
        "n_parameters": model.n_parameters_,
        "history": model.history_,
        "data": {
            "fingerprint": data.fingerprint,
            "settings": data.settings,
            "n_features": data.n_features,
            "n_classes": data.n_classes,
            "tissues": list(data.tissues),
        },
        "versions": package_versions(),
    }
    (out_dir / METRICS_FILE).write_text(json.dumps(record, indent=2, default=_jsonable))
    if print_summary:
        _print_summary(model_name, model, metrics, out_dir)
    return metrics


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _print_summary(model_name: str, model: Any, metrics: Mapping[str, float], out_dir: Path) -> None:
    print(
        f"{model_name}: {model.n_steps_} step(s) in {model.train_seconds_:.1f}s on {model.device_}, "
        f"{model.n_parameters_:,} parameters"
    )
    width = max(len(name) for name in metrics)
    for name, value in metrics.items():
        print(f"  {name:<{width}}  {value:.4f}")
    print(f"results: {out_dir}")


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
        help="a model parameter (repeatable); VALUE is a TOML/JSON literal, e.g. lr=3e-4, hidden_sizes=[512,128]",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default $HPO_HOME/train/<model>-<time>)")
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
    add_data_options(parser, title="data settings (as `hpo data prepare`; default: the full synthetic preset)",
                     renamed=RENAMED_FOR_MODEL_COMMANDS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.config:
        from hpo.retrain import run_config_command

        return run_config_command(args)
    if args.list:
        _print_models()
        return 0
    if not args.model_name:
        raise ValueError("give --model NAME (or --list to see the models)")
    params = dict(parse_assignment(text) for text in args.assignments)
    out_dir = args.out
    if out_dir is None:
        from hpo.storage import run_directory

        out_dir = run_directory() / "train" / f"{args.model_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    train_and_report(
        args.model_name,
        params,
        config_from_args(args),
        out_dir,
        train_split=args.train_split or "train",
        eval_splits=tuple(args.eval_splits or ("val",)),
        device=args.device,
        seed=args.seed,
        num_threads=args.threads,
    )
    return 0


def _print_models() -> None:
    from models import available_models, get_spec

    for name in available_models():
        spec = get_spec(name)
        print(f"{name} ({spec.family}, {spec.task}): {spec.description}")
        print("    " + ", ".join(f"{key}={value!r}" for key, value in spec.defaults.items()))
