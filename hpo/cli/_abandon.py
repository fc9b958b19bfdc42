"""``hpo abandon STUDY N [N ...]``: fail running trials whose worker is gone, and re-queue them."""

from __future__ import annotations

import argparse

from hpo.cli._options import add_storage_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "abandon",
        help="fail RUNNING trials whose worker is gone (and queue their configurations again)",
        description=(
            "Heartbeats fail a dead worker's trial on their own after the grace period, also one that never beat. "
            "This fails such trials at once and queues the same configuration again (for a storage without "
            "heartbeats, or to skip the wait). Abandoned trials do not count toward max_failed_trials."
        ),
    )
    parser.add_argument("study", help="study name (see `hpo studies`)")
    parser.add_argument("numbers", type=int, nargs="+", metavar="N", help="trial numbers (see `hpo show`)")
    parser.add_argument("--no-requeue", action="store_true", help="do not run their configurations again")
    add_storage_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.results import load_study
    from hpo.run import abandon_trials
    from hpo.storage import open_storage, resolve_storage_url

    study = load_study(open_storage(resolve_storage_url(args.storage), heartbeat_interval=None), args.study)
    for result in abandon_trials(study, args.numbers, requeue=not args.no_requeue):
        again = f"; its configuration is queued again as trial {result.requeued_as}" if result.requeued_as is not None else ""
        print(f"trial {result.number} of {args.study}: failed (abandoned){again}")
    return 0
