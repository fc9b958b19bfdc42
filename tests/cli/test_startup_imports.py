"""The light commands stay light: no torch (nor plotly, nor scikit-learn) in ``hpo export/studies/show``
or in the launcher of ``hpo run`` up to the start of its workers (issue 21: importing torch and the
models there doubled the time to the first trial and made ``hpo export`` take 8-31 s).

Each command runs in a fresh interpreter, through ``hpo.cli.main``, which then prints the heavy modules
that were loaded; a ``from models.registry import ...`` creeping back into one of these paths fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpo.run import run_worker
from hpo.study import load_study_file
from tests.run.test_workers import sqlite_url, tiny_study

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "plotly", "sklearn")

PROBE = """
import json, sys
from hpo.cli import main
code = main(sys.argv[1:])
print("HEAVY=" + json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)

LAUNCHER_PROBE = """
import json, sys
import hpo.run._launcher as launcher

def report_instead_of_starting(commands, environments):  # everything the launcher does before its workers ran
    print("HEAVY=" + json.dumps({"code": 0, "loaded": [m for m in %r if m in sys.modules]}), flush=True)
    raise SystemExit(0)

launcher.start_workers = report_instead_of_starting
from hpo.cli import main
sys.exit(main(sys.argv[1:]))
""" % ((*HEAVY, "pandas"),)


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, tiny_dataset, tiny_data_config):
    """A 2-trial classifier study on tiny data: (folder, url, name)."""
    folder = tmp_path_factory.mktemp("startup")
    url = sqlite_url(folder)
    path = tiny_study(folder, tiny_data_config, name="light", n_trials=2, **{"fixed.max_epochs": 2})
    run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    return folder, url, "light"


def loaded_modules(probe: str, argv: list[str], home: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HPO_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env,
                          cwd=home, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("HEAVY=")]
    assert lines, f"exit {done.returncode}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return json.loads(lines[-1].removeprefix("HEAVY="))


@pytest.mark.parametrize("command", [
    ["studies"],
    ["show", "light"],
    ["export", "light", "--out", "best.toml"],
])
def test_export_studies_and_show_import_no_torch_plotly_or_sklearn(finished_study, command):
    folder, url, _name = finished_study
    result = loaded_modules(PROBE, [*command, "--storage", url], folder)
    assert result == {"code": 0, "loaded": []}


def test_the_launcher_validates_prepares_and_creates_the_study_without_torch(tmp_path, tiny_dataset, tiny_data_config):
    """Study file, parameter names, the data (cached: a first preparation also loads sklearn to split),
    fidelity "auto", the reference trial: all without torch, and without pandas on a cache hit."""
    path = tiny_study(tmp_path, tiny_data_config, name="launch", **{"fixed.fidelity": "auto", "device": "auto"})
    result = loaded_modules(LAUNCHER_PROBE, ["run", str(path), "--storage", sqlite_url(tmp_path)], tmp_path)
    assert result == {"code": 0, "loaded": []}
    import optuna

    study = optuna.load_study(study_name="launch", storage=sqlite_url(tmp_path))
    assert "fidelity_choice" in study.user_attrs  # the launcher got as far as choosing the fidelity
    assert [t.user_attrs.get("reference") for t in study.get_trials()] == [True]  # and enqueued the reference
