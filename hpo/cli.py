"""The ``hpo`` command line: one subcommand module per job, each registering itself.

Subcommand modules live in :mod:`hpo.commands`; each defines
``register(subparsers)`` and imports heavy libraries (torch, optuna) inside its
handlers only, so that ``hpo --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from hpo.outage import EXIT_CODE, StorageOutage, is_storage_error, short_reason

COMMAND_MODULES: tuple[str, ...] = (
    "hpo.commands.data",
    "hpo.commands.compare",
    "hpo.commands.train",
    "hpo.commands.run",
    "hpo.commands.worker",
    "hpo.commands.studies",
    "hpo.commands.show",
    "hpo.commands.export",
    "hpo.commands.abandon",
    "hpo.commands.demo",
    "hpo.commands.dashboard",
    "hpo.commands.proxy",
    "hpo.commands.report",
    "hpo.commands.latent",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo",
        description="Hyperparameter optimisation for tissue-of-origin classification from RNA-seq.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
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
        print(f"hpo {args.command}: error: {error}", file=sys.stderr)
        return EXIT_CODE if isinstance(error, StorageOutage) else 2
    except Exception as error:
        if verbose or not is_storage_error(error):
            raise
        print(f"hpo {args.command}: error: storage unreachable: {short_reason(error)}", file=sys.stderr)
        return EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
