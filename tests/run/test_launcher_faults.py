"""Faults of ``hpo run``'s own process: its workers die with it, start inside the block that stops them, are bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.run.test_workers import sqlite_url, tiny_study, trials_of


@pytest.fixture(autouse=True)
def _private_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "hpo-home"))


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent_and_state(int(entry.name))[0] == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent to reap it has ended)."""
    return _parent_and_state(pid)[1] not in ("", "Z", "X")


def _parent_and_state(pid: int) -> tuple[int, str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1, ""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_sigkill_of_hpo_run_leaves_no_worker_alive(tmp_path, tiny_dataset, tiny_data_config):
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="orphans", n_trials=20,
                      **{"fixed.max_epochs": 400, "fixed.early_stopping_patience": 400})
    launcher = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", url, "--workers", "2", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        workers = _workers_with_a_running_trial(launcher, url, "orphans", timeout=120)
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.monotonic() + 5.0
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid in workers if alive(pid)]
    finally:
        for pid in children_of(launcher.pid) + locals().get("workers", []):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if launcher.poll() is None:
            launcher.kill()
    assert survivors == [], "workers outlived their launcher by more than 5 s"
    trials = trials_of(url, "orphans")
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]  # each worker failed its trial ...
    interrupted = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == "interrupted"]
    waiting = [t.params for t in trials if t.state == TrialState.WAITING]
    assert interrupted and all(t.params in waiting for t in interrupted), [  # ... and queued its configuration again
        (t.number, t.state.name, t.params, t.user_attrs.get("fail_reason")) for t in trials
    ]


def _workers_with_a_running_trial(launcher: subprocess.Popen, url: str, name: str, timeout: float) -> list[int]:
    """The launcher's two worker processes, once one of them runs a trial."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert launcher.poll() is None, f"hpo run ended early ({launcher.returncode})"
        workers = children_of(launcher.pid)
        try:
            running = len(workers) == 2 and any(t.state == TrialState.RUNNING for t in trials_of(url, name))
        except KeyError:  # the study is not created yet
            running = False
        if running:
            time.sleep(0.5)
            return workers
        time.sleep(0.3)
    raise AssertionError("no worker started a trial")


def test_a_worker_that_cannot_start_stops_the_ones_started_before_it():
    from hpo.run._launcher import WorkerStartError, start_workers

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    commands = [sleeper, sleeper, ["/nonexistent/python"], sleeper]
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    class Recording(real_popen):  # the real Popen, remembering what it started
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    subprocess.Popen = Recording
    try:
        with pytest.raises(WorkerStartError, match="could not start worker 3 of 4: No such file.*stopped the 2 started"):
            start_workers(commands, [dict(os.environ)] * 4)
    finally:
        subprocess.Popen = real_popen
        for process in started:
            if process.poll() is None:
                process.kill()
    assert len(started) == 2 and all(p.returncode is not None for p in started)  # stopped and reaped


def test_workers_are_bounded_by_what_the_machine_can_run(tmp_path, tiny_data_config):
    from hpo.run._launcher import WORKERS_PER_CORE, check_workers, cpu_count, max_workers

    bound, why = max_workers()
    assert 1 <= bound <= WORKERS_PER_CORE * cpu_count() and why
    assert check_workers(bound) == bound
    with pytest.raises(ValueError, match=rf"--workers {bound + 1}: at most {bound} on this machine \("):
        check_workers(bound + 1)
    # through the real command line: one line, exit 2, before any data is prepared or worker started
    path = tiny_study(tmp_path, tiny_data_config, name="many")
    done = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", sqlite_url(tmp_path), "--workers", "1000"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hpo run: error: --workers 1000: at most {bound} on this machine")


def test_the_launcher_counts_gpus_from_the_driver_not_torch(tmp_path, monkeypatch):
    """Workers are pinned to the GPUs the NVIDIA driver lists; CUDA_VISIBLE_DEVICES and device = cpu win."""
    import hpo.run._launcher as launcher

    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (tmp_path / bus).mkdir()
    monkeypatch.setattr(launcher, "NVIDIA_PROC", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert launcher.visible_gpus("auto") == ["0", "1"]
    assert launcher.visible_gpus("cpu") == [] and launcher.visible_gpus("cuda:1") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert launcher.visible_gpus("cuda") == ["3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(launcher, "NVIDIA_PROC", str(tmp_path / "no-driver"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi either
    assert launcher.visible_gpus("auto") == []
