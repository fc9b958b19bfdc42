"""Read-only commands on a read-only run directory (a read-only bind mount: chmod does not stop root)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hpo.run import run_worker
from hpo.study import load_study_file
from tests.run.test_workers import tiny_study

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def read_only(tmp_path):
    """``make_read_only(folder)`` bind-mounts ``folder`` read-only over itself (needs root; skipped elsewhere)."""
    mounted: list[Path] = []

    def make_read_only(folder: Path) -> None:
        if os.geteuid() != 0:
            pytest.skip("a read-only bind mount needs root (and chmod does not stop root)")
        done = subprocess.run(
            f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}", shell=True, check=False,
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
        mounted.append(folder)
        assert not os.access(folder, os.W_OK)

    yield make_read_only
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("state", ["a worker still open", "no writer", "a copy in rollback-journal mode"])
def test_studies_show_and_export_work_on_a_read_only_run_directory(
    tmp_path, tiny_dataset, tiny_data_config, read_only, state, monkeypatch
):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HPO_HOME", str(home))
    path = tiny_study(tmp_path, tiny_data_config, name="ro", n_trials=1)
    if state == "a worker still open":  # this process keeps its connection: the -wal and -shm files stay
        run_worker(load_study_file(path), worker_index=0, num_threads=1)
    else:  # a separate process that has ended: SQLite removed them
        subprocess.run([sys.executable, "-m", "hpo.cli", "worker", str(path), "--threads", "1"], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=300)
    if state == "a copy in rollback-journal mode":  # e.g. a backup, or a file plain Optuna made: not WAL
        with sqlite3.connect(home / "optuna.db") as connection:
            connection.execute("PRAGMA journal_mode=DELETE")
    before = sorted(p.name for p in home.iterdir())
    read_only(home)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPO_HOME": str(home)}
    env.pop("HPO_STORAGE", None)
    for command in (["studies"], ["show", "ro"], ["export", "ro", "--out", str(tmp_path / "best.toml")]):
        done = subprocess.run([sys.executable, "-m", "hpo.cli", *command], env=env, check=False,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
    assert "ro" in done.stdout and (tmp_path / "best.toml").is_file()
    assert sorted(p.name for p in home.iterdir()) == before
