"""The ``hpo`` command line: one subcommand module per job, each registering itself.

Each subcommand lives in a module ``hpo.cli._<command>`` that defines ``register(subparsers)``
and imports heavy libraries (torch, optuna) inside its handler only, so that ``hpo --help``
stays fast. A command parses its arguments, calls the library, and prints.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

COMMANDS: tuple[str, ...] = (
    "data", "compare", "train", "run", "worker", "studies", "show", "export", "abandon", "demo",
    "dashboard", "proxy", "report", "latent",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo",
        description="Hyperparameter optimisation for tissue-of-origin classification from RNA-seq.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        importlib.import_module(f"hpo.cli._{command}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = args.verbose or os.environ.get("HPO_DEBUG") == "1"
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("hpo: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, LookupError) as error:
        # User-facing problems (bad files, bad settings, unreachable storage) end in one line.
        if verbose:
            raise
        from hpo.storage import EXIT_CODE, StorageOutage

        if code := _disk_full(args.command, error):
            return code
        print(f"hpo {args.command}: error: {error}", file=sys.stderr)
        return EXIT_CODE if isinstance(error, StorageOutage) else 2
    except Exception as error:
        from hpo.storage import EXIT_CODE, is_storage_error, short_reason

        if not verbose and (code := _disk_full(args.command, error)):
            return code
        if verbose or not is_storage_error(error):
            raise
        print(f"hpo {args.command}: error: storage unreachable: {short_reason(error)}", file=sys.stderr)
        return EXIT_CODE


def _disk_full(command: str, error: BaseException) -> int:
    """For a full disk: one line saying so and its exit status (:data:`hpo.storage.DISK_FULL_EXIT_CODE`); else 0."""
    from hpo.storage import DISK_FULL_EXIT_CODE, disk_full_reason

    reason = disk_full_reason(error)
    if not reason:
        return 0
    print(f"hpo {command}: error: disk full: {reason}", file=sys.stderr)
    return DISK_FULL_EXIT_CODE
