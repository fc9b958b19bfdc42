"""``hpo studies``: the studies in a storage, with trial counts and best values."""

from __future__ import annotations

import argparse

from hpo.cli._options import add_storage_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("studies", help="list the studies in a storage with counts and best values")
    add_storage_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.results import list_studies
    from hpo.storage import open_storage, redact, resolve_storage_url

    url = resolve_storage_url(args.storage)
    rows = list_studies(open_storage(url, heartbeat_interval=None, read_only=True))
    if not rows:
        print(f"no studies in {redact(url)}")
        return 0
    header = ("study", "model", "metric", "dir", "complete", "pruned", "failed", "running", "best", "trial", "started")
    table = [header] + [
        (
            r.name, r.model, r.metric, r.direction[:3], str(r.counts.complete), str(r.counts.pruned),
            str(r.counts.failed), str(r.counts.running),
            "-" if r.best_value is None else f"{r.best_value:.4f}", "-" if r.best_trial is None else str(r.best_trial),
            r.started,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"({len(rows)} {'study' if len(rows) == 1 else 'studies'} in {redact(url)})")
    return 0
