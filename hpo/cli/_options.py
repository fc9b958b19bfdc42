"""Options several commands share, each declared once: the storage, a study file's, plotly.js."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from hpo.browse import DEFAULT_PLOTLY_JS, PLOTLY_JS_MODES, SHARED_FILE
from hpo.study import parse_overrides

STORAGE_HELP = "storage URL (default: $HPO_STORAGE, else the SQLite file $HPO_HOME/optuna.db, HPO_HOME=./hpo-runs)"


def add_storage_argument(parser: argparse.ArgumentParser, *, also: str = "") -> None:
    """``--storage URL``, the same for every command; ``also`` adds what this command does differently."""
    parser.add_argument("--storage", metavar="URL", help=STORAGE_HELP + (f"; {also}" if also else ""))


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study_file", help="TOML study file, e.g. studies/classifier.toml")
    add_storage_argument(parser)
    parser.add_argument("--study-name", help="study name in the storage (default: the file's `name`)")
    parser.add_argument("--n-trials", type=int, help="finished trials in total (overrides n_trials)")
    parser.add_argument("--timeout", type=float, help="seconds after which no trial starts (overrides timeout)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides device)")
    parser.add_argument(
        "--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
        help="override a study-file key, e.g. --set data.preset=tiny --set fixed.max_epochs=5 (repeatable)",
    )


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    overrides = parse_overrides(args.assignments)
    if args.n_trials is not None:
        overrides["n_trials"] = args.n_trials
    if args.timeout is not None:
        overrides["timeout"] = args.timeout
    if args.device is not None:
        overrides["device"] = args.device
    return overrides


def add_plotly_js_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--plotly-js`` option of the commands that write plotly reports."""
    parser.add_argument(
        "--plotly-js", choices=PLOTLY_JS_MODES, default=DEFAULT_PLOTLY_JS,
        help=f"how the page loads plotly.js: 'shared' (default) writes {SHARED_FILE} once beside the report "
             "(offline, small pages); 'inline' embeds it (one self-contained ~5 MB file); "
             "'cdn' loads it from cdn.plot.ly (needs the network)",
    )


def serve_until_interrupted(service: str, host: str, serve: Callable[..., None], **options: Any) -> int:
    """Warn if ``service`` binds beyond loopback, then ``serve(host=host, **options)`` until Ctrl-C; exit status 0."""
    from hpo.storage import exposure_warning

    warning = exposure_warning(service, host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        serve(host=host, **options)
    except KeyboardInterrupt:
        print(f"{service} stopped")
    return 0
