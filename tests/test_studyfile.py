"""Study files: every shipped file validates; every malformed one gets its own error with file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest

from hpo.overrides import format_overrides, parse_overrides
from hpo.space import parse_space
from hpo.studyfile import StudyFileError, load_study_file

STUDIES = sorted((Path(__file__).parent.parent / "studies").glob("*.toml"))

VALID = """
name = "t"
model = "classifier"
metric = "val_balanced_accuracy"
direction = "maximize"
n_trials = 4

[data]
preset = "tiny"

[fixed]
max_epochs = 3

[space.lr]
type = "float"
low = 1e-4
high = 1e-1
log = true

[space.optimizer]
type = "categorical"
choices = ["adamw", "sgd"]

[space.momentum]
type = "float"
low = 0.5
high = 0.99
when = { optimizer = "sgd" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_study_files_cover_every_required_model():
    models = {load_study_file(path).model for path in STUDIES}
    assert {
        "autoencoder", "classifier", "conv_classifier", "svc", "random_forest", "knn",
        "logistic_regression", "svc_on_embeddings",
    } <= models


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_file_validates(path):
    spec = load_study_file(path)
    assert spec.name == path.stem
    assert len(spec.space) >= 2
    assert spec.n_trials and spec.n_trials >= 10
    assert spec.direction == ("minimize" if spec.metric.endswith("_mse") else "maximize")


def test_valid_file_parses_into_distributions(tmp_path):
    spec = load_study_file(write(tmp_path, VALID))
    distributions = spec.space.distributions()
    assert distributions["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    assert distributions["optimizer"].choices == ("adamw", "sgd")
    assert spec.fixed == {"max_epochs": 3}
    assert spec.sampler.name == "tpe" and spec.pruner.name == "median"
    assert spec.data.preset == "tiny"
    assert spec.text.startswith("\nname")


# Each case: an edit of VALID -> the dotted key and words its error must contain.
MALFORMED = {
    "unknown top-level key": (VALID + 'n_trails = 3\n', "n_trails: unknown key (did you mean 'n_trials'?)"),
    "wrong type": (VALID.replace("n_trials = 4", 'n_trials = "four"'), "n_trials: expected an integer"),
    "low > high": (VALID.replace("low = 1e-4\nhigh = 1e-1", "low = 0.5\nhigh = 0.1"), "space.lr: low > high"),
    "log with low <= 0": (VALID.replace("low = 1e-4", "low = 0.0"), "space.lr.low: log scale needs low > 0"),
    "unknown parameter type": (VALID.replace('type = "float"\nlow = 1e-4', 'type = "double"\nlow = 1e-4'), "space.lr.type"),
    "unknown key in a parameter": (VALID.replace("log = true", "log = true\nlgo = 1"), "space.lr.lgo: unknown key"),
    "unknown model": (VALID.replace('model = "classifier"', 'model = "clasifier"'), "model: unknown model 'clasifier' (did you mean 'classifier'?)"),
    "parameter the model lacks": (VALID.replace("[fixed]\n", "[fixed]\nlearning_rate = 0.1\n"), "fixed.learning_rate: model 'classifier' has no parameter"),
    "wrong metric for the model": (VALID.replace("val_balanced_accuracy", "val_reconstruction_mse").replace('"maximize"', '"minimize"'), "metric: 'val_reconstruction_mse' is not reported"),
    "maximising a loss": (VALID.replace("val_balanced_accuracy", "val_loss"), "direction: 'maximize' would make 'val_loss'"),
    "unknown sampler": (VALID + '[sampler]\nname = "tpee"\n', "sampler.name: unknown sampler 'tpee'"),
    "unknown sampler option": (VALID + '[sampler]\nname = "tpe"\nn_startup = 3\n', "sampler.n_startup: unknown option"),
    "unknown pruner": (VALID + '[pruner]\nname = "medain"\n', "pruner.name: unknown pruner 'medain'"),
    "unknown pruner option": (VALID + '[pruner]\nname = "median"\nwarmup = 3\n', "pruner.warmup: unknown option"),
    "wilcoxon on a learning curve": (VALID + '[pruner]\nname = "wilcoxon"\n', "pruner.name: 'wilcoxon' compares fold-wise"),
    "condition on an unknown parameter": (VALID.replace('optimizer = "sgd" }', 'optimiser = "sgd" }'), "space.momentum.when.optimiser"),
    "condition on an impossible value": (VALID.replace('optimizer = "sgd" }', 'optimizer = "rmsprop" }'), "'rmsprop' is not one of the choices"),
    "bound outside the model's range": (VALID.replace("low = 0.5\nhigh = 0.99", "low = 0.5\nhigh = 1.5"), "space.momentum.high"),
    "choice the model rejects": (VALID.replace('["adamw", "sgd"]', '["adamw", "sgd", "lbfgs"]'), "space.optimizer.choices"),
    "bad data setting": (VALID.replace('preset = "tiny"', 'preset = "huge"'), "[data] preset='huge'"),
    "unknown data key": (VALID.replace('preset = "tiny"', 'preset = "tiny"\ngenes = 5'), "[data] unknown key 'genes'"),
    "bad device": (VALID + 'device = "gpu"\n', "device: expected auto, cpu, cuda or cuda:N"),
    "no budget": (VALID.replace("n_trials = 4\n", ""), "give n_trials, timeout"),
    "searched and fixed": (VALID.replace("[fixed]\n", "[fixed]\nlr = 0.1\n"), "fixed.lr: also in [space]"),
    "heartbeat grace too short": (VALID + "[heartbeat]\ninterval = 5\ngrace_period = 5\n", "heartbeat.grace_period: must exceed"),
    "missing required key": (VALID.replace('metric = "val_balanced_accuracy"\n', ""), "metric: missing"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_study_file_gets_its_error(tmp_path, case):
    # "unknown top-level key" must come before any table to be top-level in TOML
    text, expected = MALFORMED[case]
    if case in ("unknown top-level key", "bad device"):
        line = text.strip().splitlines()[-1]
        text = line + "\n" + text.replace(line + "\n", "")
    path = write(tmp_path, text)
    with pytest.raises(StudyFileError) as error:
        load_study_file(path)
    message = str(error.value)
    assert expected in message, message
    assert message.startswith(str(path) + ": ")
    assert len(error.value.problems) == 1, message


def test_every_problem_is_reported_at_once(tmp_path):
    text = VALID.replace("low = 1e-4\nhigh = 1e-1", "low = 0.5\nhigh = 0.1") + '[sampler]\nname = "nope"\n'
    with pytest.raises(StudyFileError) as error:
        load_study_file(write(tmp_path, text))
    assert len(error.value.problems) == 2
    assert all(line.startswith(str(tmp_path)) for line in str(error.value).splitlines())


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(StudyFileError, match="no such study file"):
        load_study_file(tmp_path / "absent.toml")
    with pytest.raises(StudyFileError, match="not valid TOML"):
        load_study_file(write(tmp_path, "name = \n"))


def test_overrides_apply_before_validation(tmp_path):
    path = write(tmp_path, VALID)
    spec = load_study_file(path, {"n_trials": 9, "fixed.max_epochs": 2, "sampler": {"name": "random", "seed": 3}})
    assert spec.n_trials == 9 and spec.fixed["max_epochs"] == 2
    assert (spec.sampler.name, spec.sampler.seed) == ("random", 3)
    with pytest.raises(StudyFileError, match="space.lr: low > high"):
        load_study_file(path, {"space.lr.low": 1.0})


def test_set_assignments_round_trip():
    overrides = parse_overrides(["data.preset=tiny", "n_trials=4", "space.lr.low=1e-3", 'device="cpu"', "x=[1, 2]"])
    assert overrides == {"data.preset": "tiny", "n_trials": 4, "space.lr.low": 1e-3, "device": "cpu", "x": [1, 2]}
    assert parse_overrides(format_overrides(overrides)) == overrides
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_overrides(["n_trials"])


def test_conditional_parameter_is_sampled_only_when_its_condition_holds():
    space, problems = parse_space(
        {
            "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]},
            "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},
            "sizes": {"type": "categorical", "choices": [[64, 32], [128]]},
        }
    )
    assert problems == []
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        seen.add(params["optimizer"])
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert params["sizes"] in ([64, 32], [128])  # list choices come back decoded
        study.tell(trial, 0.0)
    assert seen == {"adamw", "sgd"}


def test_int_step_and_float_step_distributions():
    space, problems = parse_space(
        {"n": {"type": "int", "low": 100, "high": 800, "step": 50}, "d": {"type": "float", "low": 0, "high": 1, "step": 0.25}}
    )
    assert problems == []
    assert space.distributions()["n"] == optuna.distributions.IntDistribution(100, 800, step=50)
    assert space.distributions()["d"] == optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25)
    _, problems = parse_space({"n": {"type": "int", "low": 1.5, "high": 3}})
    assert "space.n.low: expected an integer" in str(problems[0])


@pytest.mark.parametrize(
    ("sampler", "pruner", "warned"),
    [
        ('name = "gp"', 'name = "wilcoxon"', True),
        ('name = "cmaes"', 'name = "median"', True),
        ('name = "cmaes"\nconsider_pruned_trials = true', 'name = "median"', False),
        ('name = "gp"', 'name = "none"', False),
        ('name = "tpe"', 'name = "median"', False),
    ],
)
def test_complete_only_sampler_with_a_pruner_is_warned_about(tmp_path, sampler, pruner, warned):
    text = VALID.replace('[fixed]', '[fixed]\nfidelity = "folds"').replace('model = "classifier"', 'model = "svc"')
    text = text.replace("max_epochs = 3", "").split("[space.lr]")[0]
    text += f'[space.C]\ntype = "float"\nlow = 0.1\nhigh = 10.0\nlog = true\n\n[sampler]\n{sampler}\n\n[pruner]\n{pruner}\n'
    spec = load_study_file(write(tmp_path, text))
    assert bool(spec.warnings) == warned, spec.warnings
    if warned:
        assert spec.warnings[0].startswith("sampler.name:") and "COMPLETE" in spec.warnings[0]
