"""``hpo report STUDY --out DIR``: a static, offline HTML report of a study or comparison group."""

from __future__ import annotations

import argparse

from hpo.cli._options import add_plotly_js_argument, add_storage_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report (plotly figures, top trials) of a study or comparison",
        description=(
            "Optimisation history, parameter importances, parallel coordinates, slice, intermediate values, "
            "timeline and the top trials of a study, as an HTML page that works offline (plotly.js: see "
            "--plotly-js). STUDY may also be the name of a comparison group made by 'hpo compare' with a "
            "--storage: the page then starts with the winner, the ranking and the comparison figure."
        ),
    )
    parser.add_argument("study", metavar="STUDY", help="study name, or comparison prefix from 'hpo compare'")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder to write report.html into")
    add_storage_argument(parser)
    parser.add_argument("--top", type=int, default=10, help="rows in the top-trials table (default 10)")
    add_plotly_js_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from hpo.browse import write_report
    from hpo.storage import open_storage

    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(args.storage, heartbeat_interval=None)
    path = write_report(storage, args.study, args.out, top=args.top, plotly_js=args.plotly_js)
    print(f"report: {path}")
    return 0
