"""Many ``python -m hpo.cli`` commands started at once as real processes, then collected."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
UNSET = ("HPO_STORAGE",)
"""Variables of the test run's environment a command does not inherit unless it sets them itself."""


def cli_environment(home: Path, extra: Mapping[str, str] | None = None, unset: Sequence[str] = UNSET) -> dict[str, str]:
    """The environment of a fresh ``hpo`` process: this checkout importable, a private ``HPO_HOME``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPO_HOME": str(home), **(extra or {})}
    for name in unset:
        if name not in (extra or {}):
            env.pop(name, None)
    return env


def run_cli_processes(
    commands: Mapping[str, tuple[Sequence[str], Mapping[str, str], Path | None]], *, timeout: float = 300
) -> dict[str, subprocess.CompletedProcess]:
    """Start every ``case: (hpo arguments, environment, working directory)`` at once; their results by case."""
    started: dict[str, Any] = {
        case: subprocess.Popen([sys.executable, "-m", "hpo.cli", *argv], env=dict(env), cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for case, (argv, env, cwd) in commands.items()
    }
    results = {}
    for case, process in started.items():
        out, err = process.communicate(timeout=timeout)
        results[case] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return results
