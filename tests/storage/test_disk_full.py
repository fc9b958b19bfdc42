"""A full disk, for real (a tiny tmpfs): named as such, with its own exit status, and not waited out as an outage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpo.storage import (
    DISK_FULL_EXIT_CODE,
    StorageRetry,
    disk_full_reason,
    is_storage_error,
    open_storage,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs root and mount; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small disk needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=False, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> None:
    """Write until no byte more fits."""
    for index in range(1000):
        try:
            with open(disk / f"filler{index}", "wb") as handle:
                while True:
                    handle.write(b"\0" * 512)
                    handle.flush()
        except OSError:
            continue


def test_a_full_disk_is_named_and_not_retried_as_an_outage(small_disk):
    url = f"sqlite:///{small_disk / 'optuna.db'}"
    storage = open_storage(url, heartbeat_interval=None)
    study = optuna.create_study(study_name="full", storage=storage)
    study.ask()  # a RUNNING trial, for `hpo abandon` to write to
    storage.engine.dispose()  # no connection left: the WAL is checkpointed and its space given back
    _fill(small_disk)

    sleeps: list[float] = []
    retry = StorageRetry(300, sleep=sleeps.append, clock=lambda: sum(sleeps))
    with pytest.raises(Exception) as caught:
        retry.call(study.set_user_attr, "note", "x" * 100_000)
    assert sleeps == [] and not retry.in_outage  # failed at once, not waited out for 300 s
    reason = disk_full_reason(caught.value)  # SQLite says "database or disk is full" or "disk I/O error"
    assert reason in ("database or disk is full", f"no space left on the disk of {small_disk / 'optuna.db'} (SQLite: disk I/O error)")
    assert not is_storage_error(caught.value)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "abandon", "full", "0", "--storage", url],
        check=False, capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == DISK_FULL_EXIT_CODE, done.stderr
    assert done.stderr.strip().splitlines() == [f"hpo abandon: error: disk full: {reason}"]


def test_a_full_disk_under_a_written_file_is_named_too(small_disk):
    _fill(small_disk)
    with pytest.raises(OSError) as caught:
        (small_disk / "best.toml").write_text("x" * 10_000)
    assert disk_full_reason(caught.value).startswith("No space left on device")
    assert disk_full_reason(ValueError("bad value")) == "" and disk_full_reason(OSError(13, "Permission denied")) == ""
