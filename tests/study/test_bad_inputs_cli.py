"""Bad study files, data settings and data files through the real ``hpo`` command line (issue 21).

Each case exits 2 with exactly one line on stderr that names the file, the field and the value. The fast test
calls the CLI's own entry point (``hpo.cli.main``) in this process; the slow one runs every case as its own
``python -m hpo.cli`` process (started together, so they cost about one start-up in wall time).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hpo.cli import main
from tests.support import data_samples as samples
from tests.support.cli_processes import cli_environment, run_cli_processes

BASE = """\
name = "bad-inputs"
model = "knn"
metric = "val_balanced_accuracy"
direction = "maximize"
n_trials = 2
{top}
[data]
preset = "tiny"
{data}
[fixed]
fidelity = "{fidelity}"
{steps}

[space.n_neighbors]
type = "int"
low = 1
high = 15
{space}
{tables}
"""
DEEP_ARRAY = "a = " + "[" * 50_000 + "]" * 50_000
DEEP_TABLES = "a = " + "{ b = " * 5_000 + "1" + " }" * 5_000

# case -> (study file parts, extra arguments, environment, words the one error line must contain)
CASES: dict[str, tuple[dict[str, str], list[str], dict[str, str], list[str]]] = {
    "50,000 nested arrays": ({"top": DEEP_ARRAY}, [], {}, ["{file}: a: too deeply nested", "50001 levels of tables and arrays"]),
    "5,000 nested inline tables": ({"top": DEEP_TABLES}, [], {}, ["{file}: a: too deeply nested", "5001 levels of tables and arrays"]),
    "deeply nested --set value": ({}, ["--set", "fixed.x=" + "[" * 2_000 + "]" * 2_000], {},
                                  ["--set fixed.x: too deeply nested", "[[[["]),
    "seed -1": ({"top": "seed = -1"}, [], {}, ["{file}: seed: expected an integer from 0 to 2**32 - 1", "got -1"]),
    "seed 2**63-1": ({"top": f"seed = {2**63 - 1}"}, [], {}, ["{file}: seed:", f"got {2**63 - 1}"]),
    "fidelity_steps 1000": ({"steps": "fidelity_steps = 1000"}, [], {}, ["{file}: fixed.fidelity_steps: fidelity_steps=1000; at most 20"]),
    "one fold": ({"steps": "fidelity_steps = 1", "fidelity": "folds"}, [], {},
                 ["{file}: fixed.fidelity_steps: fidelity_steps=1; k-fold CV", "needs at least 2 folds"]),
    "searched fidelity_steps 1000": ({"steps": "", "tables": "[space.fidelity_steps]\ntype = \"int\"\nlow = 2\nhigh = 1000"}, [], {},
                                     ["{file}: space.fidelity_steps.high: fidelity_steps=1000; at most 20"]),
    "step larger than range": ({"space": "step = 100"}, [], {},
                               ["{file}: space.n_neighbors.step: step=100 is larger than the range", "low=1, high=15"]),
    "outage window nan": ({"tables": "[storage]\noutage_window_s = nan"}, [], {},
                          ["{file}: storage.outage_window_s: expected a finite, non-negative number", "got nan"]),
    "outage window inf": ({"tables": "[storage]\noutage_window_s = inf"}, [], {}, ["{file}: storage.outage_window_s:", "got inf"]),
    "outage window negative": ({"tables": "[storage]\noutage_window_s = -5"}, [], {}, ["{file}: storage.outage_window_s:", "got -5"]),
    "HPO_STORAGE_OUTAGE_S=-5": ({}, [], {"HPO_STORAGE_OUTAGE_S": "-5"}, ["{file}: $HPO_STORAGE_OUTAGE_S:", "got '-5'"]),
    "HPO_HEARTBEAT_INTERVAL=0": ({}, [], {"HPO_HEARTBEAT_INTERVAL": "0"}, ["{file}: $HPO_HEARTBEAT_INTERVAL:", "got '0'"]),
    "data.synthetic_seed -1": ({"data": "synthetic_seed = -1"}, [], {},
                               ["{file}: [data] synthetic_seed=-1; expected an integer from 0 to 2**32 - 1"]),
    "data.split_seed -1": ({"data": "split_seed = -1"}, [], {}, ["{file}: [data] split_seed=-1; expected an integer from 0"]),
    "data.synthetic_samples 5": ({"data": "synthetic_samples = 5"}, [], {},
                                 ["{file}: [data] synthetic_samples=5; 6 tissues need at least 52 samples"]),
    "data.synthetic_samples via --set": ({}, ["--set", "data.synthetic_samples=51"], {},
                                         ["{file}: [data] synthetic_samples=51;", "at least 52"]),
    "50,000 nested arrays (hpo data --study)": ({"top": DEEP_ARRAY}, ["data-study"], {},
                                                ["{file}: a: too deeply nested", "50001 levels of tables and arrays"]),
    "empty gene column header": ({}, ["data"], {}, ["{expression}: empty gene column header at column 3 of 7"]),
}
DEFAULT_PARTS = {"top": "", "data": "", "fidelity": "subsets", "steps": "fidelity_steps = 3", "space": "", "tables": ""}


def _command(case: str, tmp: Path) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """(argv after ``hpo``, environment additions, names for the expected words) of one case."""
    parts, extra, env, _ = CASES[case]
    folder = tmp / case.replace(" ", "_").replace("/", "_")
    folder.mkdir(parents=True)
    if extra[:1] == ["data"]:
        expression, model = samples.write_pair(folder)
        genes = list(samples.GENES)
        genes[1] = ""
        expression.write_text(samples.classic_expression_text(genes=genes))
        argv = ["data", "prepare", "--expression", str(expression), "--model", str(model), "--cache-dir", str(folder / "c")]
        return argv, env, {"expression": str(expression)}
    file = folder / "study.toml"
    file.write_text(BASE.format(**{**DEFAULT_PARTS, **parts}))
    if extra == ["data-study"]:
        return ["data", "prepare", "--study", str(file)], env, {"file": str(file)}
    return ["run", str(file), *extra], env, {"file": str(file)}


def _check(case: str, code: int, stderr: str, names: dict[str, str]) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-2000:]
    for words in CASES[case][3]:
        assert words.format(**names) in lines[0], lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_naming_file_field_and_value(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, env, names = _command(case, tmp_path)
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(argv)
    _check(case, code, capsys.readouterr().err, names)
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*.db"))  # nothing started


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("bad-inputs")
    commands, names_of = {}, {}
    for case in CASES:
        argv, extra_env, names_of[case] = _command(case, tmp)
        commands[case] = (argv, cli_environment(tmp / "home", extra_env), None)
    results = run_cli_processes(commands, timeout=600)
    return {case: (results[case], names_of[case]) for case in CASES}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_input_as_its_own_process(processes, case: str) -> None:
    result, names = processes[case]
    _check(case, result.returncode, result.stderr, names)


def test_nesting_is_located_past_brackets_in_strings_and_comments(tmp_path: Path) -> None:
    from hpo.study import StudyFileError, load_study_file

    text = BASE.format(**DEFAULT_PARTS) + '\n[sampler]\n# [[[[ a comment\nname = "tpe"\n' + (
        'label = "[[[{{"\nnote = """\n[[[\n"""\nweights = ' + "[" * 65 + "]" * 65 + "\n"
    )
    file = tmp_path / "s.toml"
    file.write_text(text)
    with pytest.raises(StudyFileError) as caught:
        load_study_file(file)
    line = text.splitlines().index(next(t for t in text.splitlines() if t.startswith("weights"))) + 1
    assert caught.value.problems == [
        f"sampler.weights: too deeply nested: 67 levels of tables and arrays from line {line} (at most 64)"
    ]  # the document, [sampler], then 65 arrays
    file.write_text(text.replace("[" * 65 + "]" * 65, "[" * 62 + "]" * 62))
    with pytest.raises(StudyFileError, match="sampler") as caught:  # 64 levels: only the sampler options are wrong
        load_study_file(file)
    assert "too deeply nested" not in str(caught.value)


@pytest.mark.parametrize(("low", "high", "step", "warned"), [(1, 15, 4, "13"), (0.0, 1.0, 0.3, "0.9"), (0.0, 1.0, 0.1, None),
                                                             (1, 13, 4, None)])
def test_a_high_the_step_cannot_reach_is_one_warning(recwarn: pytest.WarningsRecorder,
                                                     low: float, high: float, step: float, warned: str | None) -> None:
    from hpo.study._space import parse_space, step_warnings

    table = {"p": {"type": "int" if isinstance(low, int) else "float", "low": low, "high": high, "step": step}}
    found = step_warnings(table, parse_space(table)[0])
    if warned is None:
        assert found == []
    else:
        assert found == [(f"space.p.high: {high} is not low + a multiple of step (low={low}, step={step}); "
                          f"the highest value sampled is {warned}")]
    assert not [w for w in recwarn if "The distribution is specified by" in str(w.message)]  # not Optuna's as well


def test_the_step_warning_reaches_the_study_spec(tmp_path: Path) -> None:
    from hpo.study import load_study_file

    file = tmp_path / "s.toml"
    file.write_text(BASE.format(**{**DEFAULT_PARTS, "space": "step = 4"}))
    assert [w for w in load_study_file(file).warnings if "step" in w] == [
        "space.n_neighbors.high: 15 is not low + a multiple of step (low=1, step=4); the highest value sampled is 13"
    ]
