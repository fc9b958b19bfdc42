"""Study files: every shipped file validates; every malformed one gets its own error with file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest

from hpo.study import decode_trial_params, format_overrides, load_study_file, parse_overrides
from hpo.study._space import parse_space
from hpo.study._studyfile import StudyFileError

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))
STUDY_DIR = Path(__file__).resolve().parents[2] / "studies"

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
    "empty name": (VALID.replace('name = "t"', 'name = ""'), "name: must not be empty"),
    "name too long": (VALID.replace('name = "t"', f'name = "{"n" * 600}"'), "has 600 characters; at most 128"),
    "name with a slash": (VALID.replace('name = "t"', 'name = "a/b"'), "name: 'a/b' may use letters"),
    "timeout nan": (VALID.replace("n_trials = 4", "n_trials = 4\ntimeout = nan"), "timeout: must be a finite number of seconds > 0, got nan"),
    "timeout inf": (VALID.replace("n_trials = 4", "n_trials = 4\ntimeout = inf"), "timeout: must be a finite number of seconds > 0, got inf"),
    "negative sampler seed": (VALID + "[sampler]\nseed = -1\n", "sampler.seed: expected an integer from 0 to 2**32 - 1, got -1"),
    "negative sampler count": (VALID + "[sampler]\nn_startup_trials = -1\n", "sampler.n_startup_trials: must be >= 0, got -1"),
    "sampler count as a string": (VALID + '[sampler]\nn_startup_trials = "10"\n', "sampler.n_startup_trials: expected int, got '10'"),
    "callable sampler option": (VALID + '[sampler]\ngamma = "lambda n: 10"\n', "sampler.gamma: sampler 'tpe' takes a Python object"),
    "constraints_func as a string": (VALID + '[sampler]\nname = "nsga2"\nconstraints_func = "f"\n', "sampler.constraints_func: sampler 'nsga2' takes a Python object"),
    "sampler given as a string": (VALID + '[sampler]\nname = "cmaes"\nindependent_sampler = "random"\n', "sampler.independent_sampler: sampler 'cmaes' takes a Python object"),
    "non-finite sampler option": (VALID + "[sampler]\nprior_weight = nan\n", "sampler.prior_weight: must be a finite number, got nan"),
    "negative pruner count": (VALID + "[pruner]\nname = \"median\"\nn_warmup_steps = -3\n", "pruner.n_warmup_steps: must be >= 0, got -3"),
    "pruner option of the wrong type": (VALID + '[pruner]\nname = "hyperband"\nreduction_factor = 2.5\n', "pruner.reduction_factor: expected int, got 2.5"),
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


def test_binary_study_file_is_named_in_its_error(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"name = \"t\"\n\x89PNG\r\n\x1a\n\xff")
    with pytest.raises(StudyFileError) as error:
        load_study_file(path)
    assert str(error.value) == f"{path}: not a text file: byte b'\\x89' at offset 11 is not UTF-8"


def test_study_name_rule_applies_to_names_from_the_command_line():
    from hpo.study import check_study_name

    assert check_study_name("classifier-2026.v2", "--study-name") == "classifier-2026.v2"
    for bad, words in (("", "must not be empty"), ("a b", "may use letters"), ("x" * 129, "at most 128")):
        with pytest.raises(ValueError, match=words) as error:
            check_study_name(bad, "--study-name")
        assert str(error.value).startswith("--study-name: ")


def test_overrides_apply_before_validation(tmp_path):
    path = write(tmp_path, VALID)
    spec = load_study_file(path, {"n_trials": 9, "fixed.max_epochs": 2, "sampler": {"name": "random", "seed": 3}})
    assert spec.n_trials == 9 and spec.fixed["max_epochs"] == 2
    assert (spec.sampler.name, spec.sampler.seed) == ("random", 3)
    with pytest.raises(StudyFileError, match="space.lr: low > high"):
        load_study_file(path, {"space.lr.low": 1.0})


def test_setting_a_new_pruner_or_sampler_name_drops_the_old_ones_options(caplog):
    caplog.set_level("INFO", logger="hpo.study")
    spec = load_study_file(STUDY_DIR / "conv_classifier.toml", {"pruner.name": "none", "sampler.name": "random"})
    assert spec.pruner.name == "none" and spec.pruner.options == {}
    assert "drops hyperband's options max_resource, min_resource, reduction_factor" in caplog.text
    # options the new pruner takes stay, and so do options given with --set
    spec = load_study_file(STUDY_DIR / "classifier.toml", {"pruner": {"name": "percentile", "percentile": 30.0}})
    assert spec.pruner.options == {"n_startup_trials": 5, "n_warmup_steps": 10, "percentile": 30.0}  # as the file says
    spec = load_study_file(STUDY_DIR / "random_forest.toml", {"sampler.name": "tpe", "sampler.n_startup_trials": 3})
    assert spec.sampler.options == {"n_startup_trials": 3} and spec.sampler.seed is not None
    # an option that fits neither is still refused when the name stays
    with pytest.raises(StudyFileError, match="min_resource"):
        load_study_file(STUDY_DIR / "classifier.toml", {"pruner.min_resource": 2})


def test_cli_set_pruner_name_none_runs_a_trial(tmp_path, tiny_dataset, tiny_data_config, capsys, caplog):
    from hpo.cli import main
    from tests.run.test_workers import tiny_study

    path = tiny_study(tmp_path, tiny_data_config, name="switch", n_trials=1,
                      pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 1})
    url = f"sqlite:///{tmp_path / 'switch.db'}"
    caplog.set_level("INFO", logger="hpo.study")
    assert main(["worker", str(path), "--storage", url, "--set", "pruner.name=none", "--worker-index", "0"]) == 0
    assert "pruner.name=none drops median's options n_startup_trials, n_warmup_steps" in caplog.text
    study = optuna.load_study(study_name="switch", storage=url)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]


def test_the_spec_keeps_its_overrides(tmp_path):
    path = write(tmp_path, VALID)
    assert load_study_file(path).overrides == {}
    spec = load_study_file(path, {"n_trials": 9, "fixed.max_epochs": 2})
    assert spec.overrides == {"n_trials": 9, "fixed.max_epochs": 2} and "n_trials = 9" not in spec.text


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
        stored = study.trials[-1]  # what export reads back, without the study file
        assert decode_trial_params(stored.params, stored.distributions) == params
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
    "section, name, options",
    [
        ("sampler", "tpe", {"n_startup_trials": 0, "multivariate": True, "group": True, "prior_weight": 2}),
        ("sampler", "cmaes", {"inc_popsize": -1, "restart_strategy": "ipop", "x0": {"lr": 0.01}}),  # -1: its default
        ("sampler", "ga", {"independent_sampler": "tpe", "population_size": 6}),  # a sampler *name* is a string
        ("sampler", "qmc", {"qmc_type": "halton", "scramble": True}),
        ("pruner", "hyperband", {"max_resource": "auto", "reduction_factor": 3}),
        ("pruner", "percentile", {"percentile": 25}),  # an integer where a float is expected
    ],
)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_valid_options_pass_the_signature_check(section, name, options):
    from hpo.samplers import build_pruner, build_sampler

    built = build_sampler(name, options, 0) if section == "sampler" else build_pruner(name, options)
    assert built is not None


def test_storage_outage_window_is_validated_and_the_environment_overrides_it(tmp_path, monkeypatch):
    from hpo.storage import DEFAULT_OUTAGE_WINDOW_S
    from hpo.study._studyfile import StudyFileError, parse_study

    base = {
        "name": "s", "model": "classifier", "metric": "val_balanced_accuracy", "direction": "maximize",
        "n_trials": 2, "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2}}, "data": {"preset": "tiny"},
    }
    assert parse_study(base).storage.outage_window_s == DEFAULT_OUTAGE_WINDOW_S
    assert parse_study({**base, "storage": {"outage_window_s": 8}}).storage.outage_window_s == 8.0
    with pytest.raises(StudyFileError) as bad:
        parse_study({**base, "storage": {"outage_window_s": -1, "outage_windw": 3}})
    assert "storage.outage_window_s: expected a finite, non-negative number of seconds, got -1" in str(bad.value)
    assert "storage.outage_windw: unknown key (did you mean 'outage_window_s'?)" in str(bad.value)
    monkeypatch.setenv("HPO_STORAGE_OUTAGE_S", "12.5")
    assert parse_study({**base, "storage": {"outage_window_s": 8}}).storage.outage_window_s == 12.5


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
