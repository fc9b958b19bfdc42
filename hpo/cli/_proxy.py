"""``hpo proxy``: serve Optuna's gRPC storage proxy so that many workers share one database connection pool."""

from __future__ import annotations

import argparse

from hpo.cli._options import add_storage_argument, serve_until_interrupted


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="serve Optuna's gRPC storage proxy in front of the database (for many workers)",
        description=(
            "Serve Optuna's gRPC storage proxy over the study database. Workers then use "
            "--storage grpc://HOST:PORT and only the proxy holds database connections. Give workers an "
            "admission lock they all reach with $HPO_LOCK_URL (a postgresql:// URL or file:///PATH on a "
            "shared file system), or parallel workers may finish a few trials more than n_trials."
        ),
    )
    add_storage_argument(parser, also="a database (sqlite:// or postgresql://) the proxy serves")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; 0.0.0.0 to serve other hosts)")
    parser.add_argument("--port", type=int, default=13000, help="port (default 13000)")
    parser.add_argument("--threads", type=int, default=10, help="server threads (default 10)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.storage import serve_proxy

    def announce(address: str) -> None:
        print(f"gRPC storage proxy: {address}  (workers: --storage {address}; Ctrl-C to stop)", flush=True)

    return serve_until_interrupted("the gRPC storage proxy", args.host, serve_proxy, storage_url=args.storage,
                                   port=args.port, threads=args.threads, on_ready=announce)
