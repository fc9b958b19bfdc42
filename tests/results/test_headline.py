"""The one headline: winner, gains over the reference trial and the runner-up, final model, commands (real SQLite)."""

from __future__ import annotations

import shlex

import optuna
import pytest
from optuna.trial import TrialState

from hpo.cli import build_parser
from hpo.results import FINAL_MODEL_ATTR, compute_headline, record_final_model, study_headline
from hpo.results._headline import fmt, signed
from hpo.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(tmp_path, values, *, direction="maximize", reference=0, pruned=(), name="s"):
    """Trials with these values (None: failed); trial ``reference`` is the reference trial (None: there is none)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    storage = open_storage(f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    study.set_user_attr("metric", "val_balanced_accuracy")
    for number, value in enumerate(values):
        trial = study.ask()
        if number == reference:
            trial.set_user_attr("reference", True)
        if number in pruned:
            trial.report(value, 1)
            study.tell(trial, state=TrialState.PRUNED)
        elif value is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)
    return study


def test_gains_over_the_reference_and_the_runner_up(tmp_path):
    study = _study(tmp_path, [0.70, 0.80, 0.9125, None, 0.90])
    head = compute_headline(study)
    assert (head.winner.number, head.runner_up.number, head.reference.number) == (2, 4, 0)
    assert head.gain_over(head.reference) == pytest.approx(0.2125)
    assert head.gain_over(head.runner_up) == pytest.approx(0.0125)
    assert head.counts == {"complete": 4, "pruned": 0, "failed": 1, "running": 0}
    lines = head.lines()
    assert lines[0] == "winner:  trial 2, val_balanced_accuracy = 0.9125 (maximize)"
    assert lines[1] == ("gain:    +0.2125 over the reference (trial 0, the defaults: 0.7000); "
                        "+0.0125 over the runner-up (trial 4: 0.9000)")
    assert lines[-2:] == ["export:  hpo export s --out best.toml", "retrain: hpo train --config best.toml"]
    markdown = head.markdown()
    assert markdown.startswith("### Winner: trial 2, val_balanced_accuracy 0.9125\n")
    assert "**+0.2125** over the reference" in markdown and "**+0.0125** over the runner-up" in markdown
    assert "only" not in markdown and "do not rank parameters" in markdown  # 4 complete trials: importances warned


def test_minimising_studies_gain_by_going_down(tmp_path):
    study = _study(tmp_path, [1.5, 0.9, 1.2], direction="minimize")
    head = compute_headline(study)
    assert head.winner.number == 1 and head.runner_up.number == 2
    assert head.gain_over(head.reference) == pytest.approx(0.6) and head.gain_over(head.runner_up) == pytest.approx(0.3)
    assert "+0.6000 over the reference" in head.gains_text()


def test_the_reference_winning_no_reference_and_a_pruned_reference_are_said(tmp_path):
    won = compute_headline(_study(tmp_path / "a", [0.9, 0.8]))
    assert won.reference_won and "the reference trial (the defaults) won" in won.gains_text()
    assert won.winner_text().startswith("trial 0 (the reference: the defaults)")
    none = compute_headline(_study(tmp_path / "b", [0.8, 0.9], reference=None))
    assert none.reference is None and none.gains_text().startswith("no reference trial; +0.1000 over the runner-up")
    pruned = compute_headline(_study(tmp_path / "c", [0.3, 0.9, 0.8], pruned=(0,)))
    assert "the reference trial 0 (the defaults) is pruned: no gain to state" in pruned.gains_text()
    alone = compute_headline(_study(tmp_path / "d", [0.9], reference=None))
    assert alone.gains_text() == "no reference trial; no runner-up yet"


def test_no_complete_trial_is_no_winner_and_no_commands(tmp_path):
    head = compute_headline(_study(tmp_path, [None, 0.2], pruned=(1,), reference=None))
    assert head.winner is None
    assert head.lines() == ["winner:  no winner yet: no complete trial (1 finished, 1 failed)"]
    assert head.markdown().startswith("### No winner yet")


def test_commands_name_the_storage_and_parse(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    study = _study(tmp_path, [0.5, 0.6], name="my study")
    head = compute_headline(study, storage=url)
    parser = build_parser()
    for command in (head.export_command(), head.export_command(trial=1, out="t1.toml")):
        args = parser.parse_args(shlex.split(command)[1:])  # copy-pasteable: the real parser takes it
        assert (args.study, args.storage) == ("my study", url)
    assert parser.parse_args(shlex.split(head.retrain_command())[1:]).config == "best.toml"
    assert shlex.split(head.export_command())[1:5] == ["export", "my study", "--storage", url]
    assert study_headline("my study", url, name_storage=True).export_command() == head.export_command()
    assert "--storage" not in study_headline("my study", url).export_command()


def test_a_recorded_final_model_is_in_the_headline_and_says_when_it_is_stale(tmp_path):
    study = _study(tmp_path, [0.7, 0.9])

    class Result:  # what hpo.results.retrain returns, as far as record_final_model reads it
        metrics = {"test_accuracy": 0.95, "test_balanced_accuracy": 0.9312, "test_loss": 0.3}
        out_dir = tmp_path / "final"
        reference = type("Report", (), {"metrics": {"test_accuracy": 0.9, "test_balanced_accuracy": 0.85}})()

    config = {"source": {"study": "s", "trial": 1, "storage": f"sqlite:///{tmp_path / 'h.db'}"}}
    assert record_final_model(config, Result()) == "recorded in study 's'"
    recorded = study.user_attrs[FINAL_MODEL_ATTR]
    assert recorded["trial"] == 1 and recorded["metrics"] == {"test_accuracy": 0.95, "test_balanced_accuracy": 0.9312,
                                                               "test_loss": 0.3}
    assert recorded["reference_metrics"] == {"test_accuracy": 0.9, "test_balanced_accuracy": 0.85}
    test = next(line for line in compute_headline(study).lines() if line.startswith("test:"))
    assert test == ("test:    test_accuracy 0.9500, test_balanced_accuracy 0.9312 (final model of trial 1, trained on "
                    "train+val; the defaults: test_accuracy 0.9000, test_balanced_accuracy 0.8500)")
    trial = study.ask()
    study.tell(trial, 0.95)  # a better trial after the retrain
    assert compute_headline(study).test_text().endswith("; trial 2 is selected since: retrain it)")


def test_record_final_model_never_fails_a_retrain(tmp_path):
    class Result:
        metrics = {"val_accuracy": 0.9}
        out_dir = tmp_path

    assert record_final_model({"source": {"study": "s"}}, Result()).startswith("not recorded in the study: no test metrics")
    Result.metrics = {"test_accuracy": 0.9}
    missing = record_final_model({"source": {"study": "nope", "storage": f"sqlite:///{tmp_path / 'x.db'}"}}, Result())
    assert missing.startswith("not recorded in study 'nope': ")


@pytest.mark.parametrize(("value", "shown"), [(0.94, "0.9400"), (1234.5, "1234.5000"), (1.5e-5, "1.5e-05"),
                                              (None, "-"), (2e5, "2e+05")])
def test_values_are_shown_at_four_places(value, shown):
    assert fmt(value) == shown
    assert signed(-0.01) == "-0.0100" and signed(0.0) == "+0.0000"


def test_a_train_and_val_retrain_logs_its_val_metrics_as_in_sample(caplog):
    import logging

    from hpo.results import retrain_step_logger

    with caplog.at_level(logging.INFO, logger="hpo.results"):
        retrain_step_logger("classifier", "train+val")(3, {"train_loss": 0.41, "val_accuracy": 1.0, "val_loss": 0.02})
        retrain_step_logger("classifier", "train")(3, {"train_loss": 0.41, "val_accuracy": 0.9})
    in_sample, held_out = [r.getMessage() for r in caplog.records]
    assert in_sample == "classifier step 3: train_loss=0.41; in-sample (val is training data here): accuracy=1, loss=0.02"
    assert held_out == "classifier step 3: train_loss=0.41, val_accuracy=0.9"  # a real validation split: as it is
