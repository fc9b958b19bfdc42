"""Arguments shared by the commands that run a study file (``run``, ``worker``, ``demo``)."""

from __future__ import annotations

import argparse
from typing import Any

from hpo.overrides import parse_overrides


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study_file", help="TOML study file, e.g. studies/classifier.toml")
    parser.add_argument("--storage", help="storage URL (default: $HPO_STORAGE, else sqlite in $HPO_HOME)")
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
