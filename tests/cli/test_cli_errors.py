"""Bad input through the real ``hpo`` command line: one line naming the file or value, exit code 2, no traceback.

The commands start at once (module fixture) and each case then checks its own process, so the cases cost
one interpreter start-up in wall time, not one each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from tests.support.cli_processes import cli_environment, run_cli_processes


def _study(tmp: Path, data_cache: str, stem: str, **changes) -> str:
    content = {
        "name": "cli", "model": "logistic_regression", "metric": "val_balanced_accuracy",
        "direction": "maximize", "n_trials": 2, "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": data_cache},
        "space": {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
        "sampler": {"name": "tpe", "seed": 0},
    }
    content.update(changes)
    path = tmp / f"{stem}.toml"
    path.write_text(tomli_w.dumps(content))
    return str(path)


# case -> (command line with {good}/{file} placeholders, words the error line must contain)
CASES = {
    "mysql storage": (["run", "{good}", "--storage", "mysql://hpo@db/hpo"],
                      ["'mysql://hpo@db/hpo'", "supported are sqlite:///FILE, postgresql://"]),
    "unknown storage scheme (studies)": (["studies", "--storage", "redis://cache:6379/0"],
                                         ["'redis://cache:6379/0'", "supported are"]),
    "missing database driver (worker)": (["worker", "{good}", "--storage", "postgresql+pg8000://u@h/db"],
                                         ["'postgresql+pg8000://u@h/db'", "cannot be opened here"]),
    "callable sampler option": (["run", "{file}"], ["{file}: sampler.constraints_func:", "takes a Python object"]),
    "negative sampler count": (["worker", "{file}"], ["{file}: sampler.n_startup_trials: must be >= 0, got -1"]),
    "empty name": (["run", "{file}"], ["{file}: name: must not be empty"]),
    "timeout nan": (["run", "{good}", "--timeout", "nan"], ["{good}: timeout:", "got nan"]),
    "timeout inf": (["worker", "{good}", "--timeout", "inf"], ["{good}: timeout:", "got inf"]),
    "study name with a space": (["run", "{good}", "--study-name", "my study"], ["--study-name: 'my study'"]),
    "600-character study name": (["worker", "{good}", "--study-name", "s" * 600], ["--study-name:", "600 characters"]),
    "binary study file": (["run", "{file}"], ["{file}: not a text file", "not UTF-8"]),
}
BAD_FILES = {
    "callable sampler option": {"sampler": {"name": "nsga2", "constraints_func": "my_module.constraints"}},
    "negative sampler count": {"sampler": {"name": "tpe", "n_startup_trials": -1}},
    "empty name": {"name": ""},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data_config) -> dict[str, tuple[subprocess.CompletedProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("cli-errors")
    cache = str(tiny_data_config.cache_dir)
    env = cli_environment(tmp / "home")
    good = _study(tmp, cache, "good")
    commands, names_of = {}, {}
    for case, (argv, _) in CASES.items():
        if case == "binary study file":
            file = tmp / "binary.toml"
            file.write_bytes(b'name = "x"\n\xff\xfe')
            file = str(file)
        else:
            file = _study(tmp, cache, f"bad{len(commands)}", **BAD_FILES.get(case, {}))
        names_of[case] = names = {"good": good, "file": file}
        commands[case] = ([arg.format(**names) for arg in argv], env, None)
    results = run_cli_processes(commands)
    return {case: (results[case], names_of[case]) for case in CASES}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.slow
def test_bad_input_is_one_line_naming_it_with_exit_code_2(finished, case):
    result, names = finished[case]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for words in CASES[case][1]:
        assert words.format(**names) in lines[0], lines[0]


def test_the_old_worker_module_path_says_where_the_command_moved(tmp_path) -> None:
    """Scripts that start workers as ``python -m hpo.commands.worker`` get one line naming the new command."""
    result = subprocess.run([sys.executable, "-m", "hpo.commands.worker", "studies/demo.toml"],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "python -m hpo.cli worker" in result.stderr and result.stdout == ""
