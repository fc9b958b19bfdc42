"""Warn when a service without authentication (optuna-dashboard, the gRPC proxy) listens beyond this machine."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: only this machine can connect. Anything else may be reached."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def exposure_warning(service: str, host: str) -> str | None:
    """One line to print when ``service`` binds ``host`` beyond loopback, else ``None``."""
    if is_loopback(host):
        return None
    return (
        f"warning: {service} on {host} has no authentication: anyone who reaches it can read and change the "
        "studies; bind 127.0.0.1 and use an SSH tunnel, or put an authenticating reverse proxy in front (README: Security)"
    )
