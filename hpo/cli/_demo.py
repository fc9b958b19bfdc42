"""``hpo demo`` (what ``make demo`` runs): prepare -> a short study with 2 workers -> export -> retrain -> test.

The work is :func:`hpo.run.run_demo`; this module parses, prints what it reports (the study's status
lines, the retrain's epochs with an ETA, the test metrics beside a baseline) and the headline.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hpo.cli._options import add_storage_argument

DEMO_STUDY = Path(__file__).resolve().parent.parent.parent / "studies" / "demo.toml"
INDENT = "      "
RETRAIN_LINE_EVERY_S = 60.0
"""A retrain prints an epoch line at least every this many seconds (and about ten in all)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job end to end: prepare data, a short 2-worker study, export, retrain, test metrics",
    )
    parser.add_argument("--study-file", default=str(DEMO_STUDY), help="study file (default studies/demo.toml)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--n-trials", type=int, help="finished trials (default: the study file's, 16)")
    add_storage_argument(parser)
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="override a study-file key, e.g. --set data.preset=small",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.cli._progress import final_lines
    from hpo.run import run_demo
    from hpo.study import parse_overrides

    overrides = parse_overrides(args.assignments)
    if args.n_trials:
        overrides["n_trials"] = args.n_trials
    printer = _Printer(args.workers)
    result = run_demo(args.study_file, workers=args.workers, overrides=overrides, storage_url=args.storage,
                      observer=printer)
    if not result.ok:
        launch = result.launch
        print(f"hpo demo: {launch.failure or launch.storage_problem or f'a worker failed (exit codes {launch.exit_codes})'}")
        return 1
    for line in test_metric_lines(result.final, result.baseline, result.baseline_tissue):
        print(INDENT + line)
    print()
    for line in final_lines(result.launch, bool(args.storage), best_config=str(result.config_path),
                            headline=result.headline, total_seconds=result.seconds):
        print(line)
    print(f"final:   {result.final.out_dir} (metrics.json, report_test.json, model/); test metrics {result.recorded}")
    return 0


def test_metric_lines(final: Any, baseline: dict[str, float], baseline_tissue: str) -> list[str]:
    """The final model's test metrics beside the baseline (and the reference configuration's, when retrained)."""
    reference = getattr(final, "reference", None)
    columns = ["final model"] + (["defaults"] if reference is not None else []) + ["baseline"]
    lines = [f"{'':<24} " + " ".join(f"{c:>11}" for c in columns)]
    for metric, value in final.metrics.items():
        cells = [value] + ([reference.metrics.get(metric)] if reference is not None else []) + [baseline.get(metric)]
        lines.append(f"{metric:<24} " + " ".join(f"{v:>11.4f}" if v is not None else f"{'-':>11}" for v in cells))
    lines.append(f"baseline: every test sample called {baseline_tissue}, the most frequent tissue of train+val"
                 + ("; defaults: the reference trial's configuration, retrained the same way" if reference is not None else ""))
    return lines


class _Printer:
    """A :class:`hpo.run.DemoObserver` (every method it calls is here; no import of hpo.run before the command
    runs) that prints: step headers, ``hpo run``'s status lines, the retrain's epochs."""

    def __init__(self, workers: int) -> None:
        from hpo.cli._progress import StatusPrinter

        self._status = StatusPrinter(workers, write=lambda line: _say(INDENT + line))
        self._last_epoch_line = -1e9
        self._stride = 1

    def step(self, number: int, total: int, title: str) -> None:
        _say(f"[{number}/{total}] {title}")

    def data_ready(self, data: Any, seconds: float) -> None:
        _say(f"{INDENT}{data.X_train.shape[0]}/{data.X_val.shape[0]}/{data.X_test.shape[0]} train/val/test samples, "
             f"{data.n_features} genes, {data.n_classes} tissues")

    def study_progress(self, progress: Any) -> None:
        self._status(progress)

    def exported(self, config: Any, path: Path) -> None:
        source = config["source"]
        _say(f"{INDENT}trial {source['trial']}: {source['metric']} = {source['value']:.4f} -> {path}")
        if source.get("selection"):
            _say(f"{INDENT}selected: {source['selection']}")

    def retrain_planned(self, epochs: int | None, split: str) -> None:
        if epochs is not None:
            self._stride = max(1, round(epochs / 10))
            _say(f"{INDENT}{epochs} epochs: the trial's best epoch count (no validation split is left to stop early)")

    def retrain_epoch(self, progress: Any) -> None:
        from hpo.cli._progress import clock

        last = progress.total is not None and progress.epoch >= progress.total
        due = progress.epoch % self._stride == 0 or progress.elapsed - self._last_epoch_line >= RETRAIN_LINE_EVERY_S
        if not (last or due or progress.epoch == 1):
            return
        self._last_epoch_line = progress.elapsed
        of = f"/{progress.total}" if progress.total is not None else ""
        which = "" if progress.model == "final" else f"{progress.model} (the defaults): "
        eta = f", ETA {clock(progress.eta)}" if progress.eta and not last else ""
        done = f", done in {clock(progress.elapsed)}" if last else ""
        _say(f"{INDENT}{which}epoch {progress.epoch}{of}, {progress.seconds_per_epoch:.1f} s/epoch{eta}{done}")


def _say(line: str) -> None:
    print(line, flush=True)

