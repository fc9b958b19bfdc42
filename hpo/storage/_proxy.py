"""``hpo proxy``: Optuna's gRPC storage proxy in front of the project's database.

Workers on many hosts then talk gRPC to one proxy (``--storage grpc://HOST:PORT``) and only
the proxy holds database connections. It is Optuna's own server
(:func:`optuna.storages.run_grpc_proxy_server`) over the storage :func:`hpo.storage.open_storage`
opens, behind Optuna's in-process cache as its documentation advises.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna

from hpo.storage._backends import StorageUnavailable, open_storage
from hpo.storage._optuna import make_grpc_server
from hpo.storage._urls import RDB_SCHEMES, redact, resolve_storage_url

if TYPE_CHECKING:
    import grpc

logger = logging.getLogger(__package__)

DEFAULT_PORT = 13000


def make_proxy_server(
    storage_url: str | None, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, threads: int = 10
) -> grpc.Server:
    """A started gRPC storage proxy over ``storage_url`` (an RDB URL).

    Raises :class:`OSError` when the port cannot be bound.
    """
    from concurrent.futures import ThreadPoolExecutor

    try:
        import grpc  # noqa: F401
    except ImportError:
        raise StorageUnavailable("the gRPC storage proxy needs grpcio: pip install -e '.[grpc]'") from None

    url = resolve_storage_url(storage_url)
    if not url.startswith(RDB_SCHEMES):
        raise ValueError(f"the gRPC proxy serves a database (sqlite:// or postgresql://), not {redact(url)!r}")
    storage = optuna.storages.get_storage(open_storage(url, heartbeat_interval=None))
    if port <= 0:
        raise ValueError(f"--port must name a port (1-65535), got {port}")
    _check_port_free(host, port)
    try:
        server = make_grpc_server(storage, host, port, ThreadPoolExecutor(max_workers=threads))
        server.start()
    except RuntimeError as error:  # grpcio: "Failed to bind to address ..."
        raise OSError(f"cannot listen on {host}:{port}: {error}; pick another --port") from None
    return server


def _check_port_free(host: str, port: int) -> None:
    """gRPC binds with SO_REUSEPORT, so a second proxy on a taken port would start silently: refuse it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise OSError(f"cannot listen on {host}:{port}: {error.strerror or error}; pick another --port") from None


def serve_proxy(
    storage_url: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    threads: int = 10,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the proxy until interrupted; ``on_ready("grpc://HOST:PORT")`` once it listens."""
    server = make_proxy_server(storage_url, host=host, port=port, threads=threads)
    address = f"grpc://{host}:{port}"
    logger.info("gRPC storage proxy for %s at %s", redact(resolve_storage_url(storage_url)), address)
    if on_ready is not None:
        on_ready(address)
    try:
        server.wait_for_termination()
    finally:
        server.stop(grace=2)
