"""What produced a result: package versions and the host, recorded with studies and exports."""

from __future__ import annotations

import platform
import socket
from importlib import metadata

PACKAGES = ("tissue-hpo", "optuna", "torch", "scikit-learn", "numpy", "pandas", "pyarrow", "sqlalchemy")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a result (without importing them)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def worker_id() -> str:
    """``host:pid`` of this process, for trial attributes and logs."""
    import os

    return f"{socket.gethostname()}:{os.getpid()}"
