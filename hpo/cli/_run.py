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
    from hpo.results import study_headline
    from hpo.run import finished_study, launch

    overrides = overrides_from(args)
    done = finished_study(args.study_file, overrides, storage_url=args.storage, study_name=args.study_name)
    if done is not None:  # said at once: no workers started to run no trial
        print(f"hpo run: {done.message()}")
        for line in study_headline(done.study_name, args.storage, name_storage=args.storage is not None).lines():
            print(line)
        return 0
    printer = StatusPrinter(args.workers)
    result = launch(
        args.study_file, workers=args.workers, overrides=overrides, storage_url=args.storage,
        study_name=args.study_name, on_progress=None if args.quiet else printer,
    )
    if args.quiet:
        print(status_line(result.progress, args.workers))
    try:
        headline = study_headline(result.study_name, result.storage_url, name_storage=args.storage is not None)
    except Exception:  # the storage went away as the run ended: the last progress still names the best trial
        headline = None
    for line in final_lines(result, args.storage is not None, headline=headline):
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

