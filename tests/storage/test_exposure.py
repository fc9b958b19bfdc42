"""hpo dashboard / hpo proxy warn in one line when they listen beyond this machine (no authentication)."""

from __future__ import annotations

import socket

import pytest

from hpo.cli import main
from hpo.storage._exposure import is_loopback


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("myhost.example.org", False),
])
def test_only_loopback_addresses_count_as_private(host, loopback):
    assert is_loopback(host) is loopback


def test_dashboard_on_all_interfaces_warns_before_anything_else(tmp_path, capsys):
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    assert main(["dashboard", "--storage", missing, "--host", "0.0.0.0", "--port", "0"]) == 2
    first, error = capsys.readouterr().err.strip().splitlines()
    assert first.startswith("warning: optuna-dashboard on 0.0.0.0 has no authentication")
    assert "SSH tunnel" in first and "reverse proxy" in first and "does not exist" in error
    assert main(["dashboard", "--storage", missing, "--port", "0"]) == 2  # default 127.0.0.1: no warning
    assert "warning" not in capsys.readouterr().err


def test_proxy_on_all_interfaces_warns(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code = main(["proxy", "--storage", f"sqlite:///{tmp_path / 'p.db'}", "--host", "0.0.0.0", "--port", port])
    assert code == 2
    assert capsys.readouterr().err.startswith("warning: the gRPC storage proxy on 0.0.0.0 has no authentication")
