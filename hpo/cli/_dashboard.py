"""``hpo dashboard``: optuna-dashboard on the project's storage with its artifact store."""

from __future__ import annotations

import argparse

from hpo.cli._options import add_storage_argument, serve_until_interrupted


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="browse studies, trials and their artifacts in optuna-dashboard",
        description=(
            "Serve optuna-dashboard on the study storage (default $HPO_STORAGE or the run directory's SQLite "
            "file) with the artifact store workers upload learning curves and confusion matrices to. "
            "It keeps serving while workers write to the same storage."
        ),
    )
    add_storage_argument(parser)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for everyone)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--artifact-dir", metavar="DIR",
                        help="artifact store folder (default $HPO_ARTIFACTS or $HPO_HOME/artifacts)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.browse import serve_dashboard
    from hpo.storage import artifact_directory

    def announce(url: str) -> None:
        print(f"optuna-dashboard: {url}  (Ctrl-C to stop)", flush=True)
        print(f"artifacts: {args.artifact_dir or artifact_directory()} (learning curves, confusion matrices: "
              "a trial's Artifacts section; curves of every metric: the study page)", flush=True)

    return serve_until_interrupted("optuna-dashboard", args.host, serve_dashboard, storage_url=args.storage,
                                   port=args.port, artifact_dir=args.artifact_dir, on_ready=announce)
