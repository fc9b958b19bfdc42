"""A private PostgreSQL server that tests may stop and start (the shared one at :5432 is never touched).

``initdb`` makes a throw-away cluster in a temporary folder (about 1 s), ``pg_ctl`` starts it on a free
port with its socket in that folder. PostgreSQL refuses to run as root, so as root the commands run as
the ``postgres`` OS user (``runuser``), in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (``$HPO_PG_BIN``, the PATH, or Debian's versioned folder)."""
    candidates = [os.environ.get("HPO_PG_BIN", "")]
    on_path = shutil.which("initdb")
    candidates += [str(Path(on_path).parent)] if on_path else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # the newest version first
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateServer:
    """One initdb'd cluster: :attr:`url`, :meth:`start`, :meth:`stop` (``pg_ctl stop -m fast``), :meth:`remove`."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self._as_user = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="hpo-test-pg-"))
        if self._as_user:
            shutil.chown(self.root, user=SERVER_USER)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._pg("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def _pg(self, tool: str, *args: str) -> None:
        done = subprocess.run(self._as_user + [str(self._bin / tool), *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}\n{log}")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server and wait until it accepts connections (no-op when it runs)."""
        if self.running:
            return
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: open connections are terminated, as in a restart of a real server."""
        if self.running:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
