"""``hpo run STUDY_FILE --workers K``: K workers on this machine share one study; live progress."""

from __future__ import annotations

import argparse
import sys

from hpo.cli._options import add_study_arguments, overrides_from


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
    from hpo.cli._progress import StatusPrinter, final_lines, status_line
    from hpo.run import launch

    printer = StatusPrinter(args.workers)
    result = launch(
        args.study_file, workers=args.workers, overrides=overrides_from(args), storage_url=args.storage,
        study_name=args.study_name, on_progress=None if args.quiet else printer,
    )
    if args.quiet:
        print(status_line(result.progress, args.workers))
    for line in final_lines(result, args.storage is not None):
        print(line)
    if result.failure:
        print(f"hpo run: {args.study_file}: {result.failure}", file=sys.stderr)
        return 1
    if not result.ok:
        from hpo.storage import EXIT_CODE

        if result.storage_problem:  # the workers stopped after the outage window; each said so in one line
            print(f"hpo run: error: workers stopped (exit codes {result.exit_codes}): {result.storage_problem}", file=sys.stderr)
            return EXIT_CODE
        print(f"hpo run: worker exit codes {result.exit_codes}", file=sys.stderr)
        return 1
    return 0

