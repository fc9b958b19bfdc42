"""Options several commands share, each declared once: the storage, a study file's, plotly.js."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
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


def add_force_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--force``: let ``--out`` replace ``what`` that exists already."""
    parser.add_argument("--force", action="store_true", help=f"replace {what} that --out names if it exists")


def claim_output_file(path: str | Path, *, force: bool) -> Path:
    """``path``, free to write: ``ValueError`` if a file (or a link, even a dangling one) is there, unless ``force``.

    Nothing is changed; write with :func:`write_in_place` so that a replaced file is replaced whole.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise ValueError(f"--out {path}: is a folder; name a file")
    if os.path.lexists(path) and not force:
        kind = "a symbolic link" if path.is_symlink() else "a file"
        raise ValueError(f"--out {path}: {kind} is there already; give --force to replace it, or another --out")
    return path


def write_in_place(path: Path, write: Callable[[Path], Any]) -> Path:
    """``write(temporary)`` beside ``path``, then rename it onto ``path``: a link there is replaced, not written
    through into the file it points to; a read-only old file is replaced too; a failed write leaves the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            temporary.unlink()
    return path


def claim_output_folder(path: str | Path, *, force: bool) -> Path:
    """``path``, a folder to write results into: ``ValueError`` if it holds files already (or is a file or a link), unless ``force``."""
    path = Path(path)
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        if not force:
            kind = "a symbolic link" if path.is_symlink() else "a file"
            raise ValueError(f"--out {path}: {kind} is there already; give --force to write there anyway, or another --out")
        if not path.is_dir():
            path.unlink()
        return path
    if path.is_dir() and any(path.iterdir()) and not force:
        raise ValueError(f"--out {path}: the folder holds files already; give --force to overwrite them, or another --out")
    return path
