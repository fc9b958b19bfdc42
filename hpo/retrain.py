"""Retrain an exported configuration (``hpo export``) into a final model and evaluate it once.

By default the model trains on train+val and is evaluated on the held-out test split.
Training on ``train`` and evaluating ``val`` instead reproduces the trial that was
exported: same parameters, same seed, same data (checked by fingerprint), so the
validation metric matches the trial's within :data:`REPRODUCTION_TOLERANCE`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPRODUCTION_TOLERANCE = 0.02
"""Largest difference, in the study metric, between a trial and its retrain on the same split.
On CPU with the trial's thread count (the default of ``hpo train --config --train-split train``)
the retrain is bit-identical for every model. Other thread counts or a GPU change the
floating-point summation order of PyTorch models, which can flip individual validation
predictions; the tolerance allows a few such flips among the full data set's ~210 validation samples."""


@dataclass(frozen=True)
class RetrainResult:
    metrics: dict[str, float]
    out_dir: Path
    data_fingerprint: str
    fingerprint_matches: bool
    reproduced: tuple[str, float, float] | None
    """``(metric, trial value, retrained value)`` when the retrain evaluated the trial's split."""


def retrain(
    config: Mapping[str, Any],
    out_dir: str | Path,
    *,
    train_split: str = "train+val",
    eval_splits: Sequence[str] = ("test",),
    device: str | None = None,
    num_threads: int | None = None,
    cache_dir: str | None = None,
    epochs_from_trial: bool = True,
    print_summary: bool = True,
) -> RetrainResult:
    """Train ``config`` (read with :func:`hpo.export.read_config`) and write the results to ``out_dir``.

    Training on train+val leaves no validation split for early stopping, so a torch model then
    trains for ``source.retrain_epochs`` (the median of the trial's tied best epochs; older exports:
    ``source.best_epoch``), never fewer than :data:`models.training.MIN_RETRAIN_EPOCHS`, instead of
    its whole ``max_epochs`` budget, unless ``epochs_from_trial`` is False. ``print_summary``: print the
    steps, time and metrics (``hpo train``'s summary).
    """
    from data_pipeline import DataConfig, prepare_dataset
    from hpo.commands.train import train_and_report
    from models.training import MIN_RETRAIN_EPOCHS, retrain_epoch_count

    settings = dict(config["data"])
    if cache_dir is not None:
        settings["cache_dir"] = cache_dir
    data_config = DataConfig.from_mapping(settings, where="config [data]")
    data = prepare_dataset(data_config)
    expected = config.get("source", {}).get("data_fingerprint", "")
    matches = not expected or expected == data.fingerprint
    if not matches:
        logger.warning(
            "data fingerprint %s differs from the study's %s: the input files or settings changed",
            data.fingerprint[:12], expected[:12],
        )
    out_dir = Path(out_dir)
    params = dict(config["params"])
    source = config.get("source", {})
    trial_epochs = int(source.get("retrain_epochs") or source.get("best_epoch") or 0)  # best_epoch: older exports
    if epochs_from_trial and "val" in train_split and trial_epochs and "max_epochs" in params:
        params["max_epochs"] = retrain_epoch_count(trial_epochs, int(params["max_epochs"]))
        logger.info(
            "training on %s for %d epoch(s): the median of the trial's tied best epochs, at least %d "
            "(no validation split left for early stopping)",
            train_split, params["max_epochs"], MIN_RETRAIN_EPOCHS,
        )
    metrics = train_and_report(
        config["model"], params, data_config, out_dir,
        train_split=train_split, eval_splits=tuple(eval_splits),
        device=device or config.get("device", "auto"), seed=int(config.get("seed", 0)),
        num_threads=num_threads, data=data, print_summary=print_summary,
    )
    reproduced = None
    metric = source.get("metric")
    # the trial's own validation-split score: its value, unless the value is a CV mean (fidelity = "folds")
    value = config.get("metrics", {}).get(metric, source.get("value"))
    if train_split == "train" and metric in metrics and value is not None:
        reproduced = (metric, float(value), float(metrics[metric]))
    return RetrainResult(dict(metrics), out_dir, data.fingerprint, matches, reproduced)


def copy_config(config_path: str | Path, out_dir: str | Path) -> None:
    """Keep the exported config next to the model it produced."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config_path, Path(out_dir) / f"config{Path(config_path).suffix or '.toml'}")


def run_config_command(args: Any) -> int:
    """``hpo train --config FILE``: the command-line side of :func:`retrain` (prints, returns 0)."""
    import time

    from hpo.commands.train import parse_assignment
    from hpo.export import read_config
    from hpo.storage import run_directory

    config = read_config(args.config)
    if args.assignments:  # --set still overrides single parameters of the exported config
        config = {**config, "params": {**config["params"], **dict(parse_assignment(a) for a in args.assignments)}}
    train_split = args.train_split or "train+val"
    eval_splits = tuple(args.eval_splits or (("val",) if train_split == "train" else ("test",)))
    source = config.get("source", {})
    if source.get("val_split_warning"):
        print(f"warning: the study ranked its trials on a small split: {source['val_split_warning']}")
    out_dir = args.out or (
        run_directory() / "final"
        / f"{source.get('study', config['model'])}-trial{source.get('trial', 'x')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    print(
        f"retraining {config['model']} from {args.config} (study {source.get('study', '?')}, trial {source.get('trial', '?')}) "
        f"on {train_split}, evaluating {', '.join(eval_splits)}"
    )
    threads = args.threads
    if threads is None and train_split == "train" and source.get("threads"):
        threads = int(source["threads"])  # the trial's thread count: reproduces it bit for bit on CPU
    result = retrain(
        config, out_dir, train_split=train_split, eval_splits=eval_splits,
        device=None if args.device in (None, "auto") else args.device, num_threads=threads,
        epochs_from_trial="max_epochs" not in dict(parse_assignment(a) for a in args.assignments or ()),
    )
    copy_config(args.config, out_dir)
    if not result.fingerprint_matches:
        print(f"warning: data fingerprint {result.data_fingerprint[:12]} differs from the study's: inputs changed")
    if result.reproduced is not None:
        metric, trial_value, value = result.reproduced
        verdict = "reproduced" if abs(value - trial_value) <= REPRODUCTION_TOLERANCE else "NOT reproduced"
        print(f"{verdict}: {metric} {value:.4f} vs the trial's {trial_value:.4f} (tolerance {REPRODUCTION_TOLERANCE})")
    return 0
