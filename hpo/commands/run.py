"""``hpo run STUDY_FILE --workers K``: K workers on this machine share one study; live progress."""

from __future__ import annotations

import argparse
import sys

from hpo.commands.study_args import add_study_arguments, overrides_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a study with K worker processes on this machine",
        description=(
            "Validate the study file, prepare the data once, then run K worker processes that share one "
            "study until it has n_trials finished (complete + pruned) trials in total."
        ),
    )
    add_study_arguments(parser)
    parser.add_argument("--workers", "-j", type=int, default=1, help="worker processes on this machine (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.launcher import format_progress, launch
    from hpo.storage import redact

    shown = {"line": "", "at": -1e9}

    def show(progress) -> None:
        line = format_progress(progress)
        changed = line.split("] ", 1)[1] != shown["line"].split("] ", 1)[-1]
        if not args.quiet and (changed or progress.elapsed - shown["at"] >= 30):
            print(line, flush=True)
            shown.update(line=line, at=progress.elapsed)

    result = launch(
        args.study_file, workers=args.workers, overrides=overrides_from(args), storage_url=args.storage,
        study_name=args.study_name, on_progress=show,
    )
    if args.quiet or format_progress(result.progress) != shown["line"]:
        print(format_progress(result.progress))
    if result.progress.best_trial is not None:
        print(f"best trial {result.progress.best_trial}: {result.progress.best_value:.4f}")
    print(f"storage: {redact(result.storage_url)}  study: {result.study_name}")
    print(f"next: hpo show {result.study_name}   hpo export {result.study_name} --out best.toml")
    if not result.ok:
        from hpo.outage import EXIT_CODE

        if result.storage_problem:  # the workers stopped after the outage window; each said so in one line
            print(f"hpo run: error: workers stopped (exit codes {result.exit_codes}): {result.storage_problem}", file=sys.stderr)
            return EXIT_CODE
        print(f"hpo run: worker exit codes {result.exit_codes}")
        return 1
    return 0
