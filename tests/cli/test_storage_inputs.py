"""Storage URLs and the environment through the real command line: one line naming the field and value, exit 2.

All commands start at once (module fixture), each in a fresh empty folder, so that a folder created
relative to where the command ran would be seen.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.test_cli_errors import _study
from tests.support.cli_processes import cli_environment, run_cli_processes

# case -> (arguments with {good}, extra environment, the one error line expected, exactly)
CASES = {
    "missing folder": (["run", "{good}", "--storage", "sqlite:///nonexistent/dir/x.db"], {},
                       ("hpo run: error: storage sqlite:///nonexistent/dir/x.db: no folder {cwd}/nonexistent/dir "
                       "(sqlite:///nonexistent/dir/x.db is relative to the current folder; "
                       "sqlite:////PATH is absolute); create it first")),
    "in-memory sqlite": (["worker", "{good}", "--storage", "sqlite://"], {},
                         ("hpo worker: error: storage URL 'sqlite://' is an in-memory SQLite database, gone when the "
                         "process ends and seen by no worker process: name a file, sqlite:///FILE (relative to the "
                         "current folder) or sqlite:////ABSOLUTE/FILE")),
    "negative outage window": (["run", "{good}"], {"HPO_STORAGE_OUTAGE_S": "-5"},
                               ("hpo run: error: {good}: $HPO_STORAGE_OUTAGE_S: expected a finite, non-negative number of "
                               "seconds, got '-5'")),
    "nan outage window": (["worker", "{good}"], {"HPO_STORAGE_OUTAGE_S": "nan"},
                          ("hpo worker: error: {good}: $HPO_STORAGE_OUTAGE_S: expected a finite, non-negative number of "
                          "seconds, got 'nan'")),
    "zero heartbeat interval": (["run", "{good}"], {"HPO_HEARTBEAT_INTERVAL": "0"},
                                ("hpo run: error: {good}: $HPO_HEARTBEAT_INTERVAL: expected a positive whole number "
                                "of seconds, got '0'")),
    "negative threads": (["worker", "{good}", "--threads", "-3"], {},
                         "hpo worker: error: --threads must be >= 1, got -3"),
    "bad thread variable": (["worker", "{good}"], {"HPO_NUM_THREADS": "two"},
                            "hpo worker: error: $HPO_NUM_THREADS must be a whole number >= 1, got 'two'"),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data_config) -> dict[str, tuple[subprocess.CompletedProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("storage-inputs")
    good = _study(tmp, str(tiny_data_config.cache_dir), "good")
    commands, names_of = {}, {}
    for index, (case, (argv, extra, _line)) in enumerate(CASES.items()):
        cwd = tmp / f"cwd{index}"
        cwd.mkdir()
        env = cli_environment(tmp / f"home{index}", extra,
                              ("HPO_STORAGE", "HPO_NUM_THREADS", "HPO_HEARTBEAT_INTERVAL", "HPO_STORAGE_OUTAGE_S"))
        names_of[case] = names = {"good": good, "cwd": str(cwd)}
        commands[case] = ([arg.format(**names) for arg in argv], env, cwd)
    results = run_cli_processes(commands)
    return {case: (results[case], names_of[case]) for case in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_storage_or_environment_input_is_one_line_with_exit_2(finished, case):
    result, names = finished[case]
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [CASES[case][2].format(**names)]
    assert list(Path(names["cwd"]).iterdir()) == []  # nothing created where the command ran
