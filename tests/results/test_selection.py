"""The selection rule: the best trial unless its gain over the reference (the defaults) is within the noise.

Real SQLite studies with hand-made trials (``optuna.create_trial``): fold scores, a reference trial.
"""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.cli import main
from hpo.results import compute_headline, export_trial, fold_noise, selected_trial, study_selection
from hpo.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

REFERENCE = [0.62, 0.57, 0.83, 0.67, 0.71]
NEAR = [0.62, 0.64, 0.67, 0.83, 0.71]  # the 8-tissue split 4 winner of RESULTS.md: +0.014, 1 SE 0.053
FAR = [0.90, 0.85, 0.95, 0.88, 0.92]


def _trial(scores=None, *, value=None, reference=False, state=TrialState.COMPLETE, c=1.0):
    attrs = {"reference": True} if reference else {}
    if scores is not None:
        attrs["fold_scores"] = scores
        value = float(np.mean(scores)) if value is None else value
    return create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                        intermediate_values={0: value} if state == TrialState.PRUNED else None,
                        params={"C": c}, distributions={"C": FloatDistribution(1e-3, 1e3, log=True)},
                        user_attrs=attrs)


def _study(tmp_path, trials, *, direction="maximize", metric="val_balanced_accuracy", attrs=None, name="s"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    storage = open_storage(f"sqlite:///{tmp_path / 'sel.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name=name, storage=storage, direction=direction)
    for key, value in {"model": "logistic_regression", "metric": metric, "direction": direction, **(attrs or {})}.items():
        study.set_user_attr(key, value)
    for trial in trials:
        study.add_trial(trial)
    return study


def test_a_gain_within_the_fold_noise_keeps_the_reference(tmp_path):
    study = _study(tmp_path, [_trial(REFERENCE, reference=True), _trial([0.5] * 5), _trial(NEAR, c=30.0)])
    trial, reason = selected_trial(study)
    assert trial.number == 0
    assert reason == "trial 0 (the defaults): trial 2's gain +0.0140 is within the fold noise (1 SE 0.0525)"
    selection = study_selection(study)
    assert selection.best.number == 2 and selection.kept_reference
    differences = np.subtract(NEAR, REFERENCE)
    assert selection.noise == pytest.approx(np.std(differences, ddof=1) / math.sqrt(5))


def test_a_clear_gain_selects_the_best(tmp_path):
    study = _study(tmp_path, [_trial(REFERENCE, reference=True), _trial(FAR, c=30.0), _trial(NEAR)])
    trial, reason = selected_trial(study)
    assert trial.number == 1 and "exceeds the fold noise" in reason and not study_selection(study).kept_reference


@pytest.mark.parametrize("reference_state", ["none", "pruned"])
def test_without_a_complete_reference_the_best_is_selected(tmp_path, reference_state):
    first = (_trial(REFERENCE) if reference_state == "none"
             else _trial(REFERENCE, reference=True, state=TrialState.PRUNED, value=0.6))
    study = _study(tmp_path, [first, _trial(NEAR, c=30.0)])
    trial, reason = selected_trial(study)
    assert trial.number == 1
    assert reason == ("trial 1: the best (no reference trial)" if reference_state == "none"
                      else "trial 1: the best (the reference trial 0 is pruned)")


def test_minimising_studies_compare_losses_going_down(tmp_path):
    reference = [1.00, 1.10, 0.90, 1.05, 0.95]
    slightly = [0.99, 1.12, 0.87, 1.02, 0.96]  # 0.012 lower on average, differences spread by ~0.02
    clearly = [0.80, 0.90, 0.70, 0.85, 0.75]  # 0.2 lower on every fold
    near = _study(tmp_path / "a", [_trial(reference, reference=True), _trial(slightly)], direction="minimize",
                  metric="val_reconstruction_mse")
    assert selected_trial(near)[0].number == 0
    far = _study(tmp_path / "b", [_trial(reference, reference=True), _trial(clearly)], direction="minimize",
                 metric="val_reconstruction_mse")
    selection = study_selection(far)
    assert selection.trial.number == 1 and selection.gain == pytest.approx(0.2)
    assert selection.noise == pytest.approx(0.0)  # the same gain on every fold: no spread at all


def test_a_consistent_but_tiny_gain_does_not_replace_the_defaults(tmp_path):
    # the 4-tissue autoencoder of RESULTS.md: 0.0016 lower MSE on every fold (1 SE ~0.0001), then worse on test
    reference = [1.000, 1.010, 0.990, 1.020, 1.000]
    tiny = [value - 0.0016 + jitter for value, jitter in zip(reference, [0.0, 0.0002, -0.0001, 0.0001, 0.0])]
    study = _study(tmp_path / "a", [_trial(reference, reference=True), _trial(tiny)], direction="minimize",
                   metric="val_reconstruction_mse")
    selection = study_selection(study)
    assert selection.trial.number == 0 and selection.kept_reference
    assert fold_noise(selection.best, selection.reference) < 0.0016  # the fold noise alone would have taken it
    assert "under 1% of the defaults' value (0.0100;" in selection.reason
    larger = [value - 0.05 for value in reference]  # 5 %: beyond the floor and the noise
    assert selected_trial(_study(tmp_path / "b", [_trial(reference, reference=True), _trial(larger)],
                                 direction="minimize", metric="val_reconstruction_mse"))[0].number == 1


def test_on_the_validation_split_one_sample_is_the_noise(tmp_path):
    # 9 validation samples: one sample is worth 0.111 accuracy
    within = _study(tmp_path, [_trial(value=0.778, reference=True), _trial(value=0.889)],
                    metric="val_accuracy", attrs={"val_samples": 9})
    trial, reason = selected_trial(within)
    assert trial.number == 0 and reason.endswith("within the validation noise (one of 9 validation samples 0.1111)")
    beyond = _study(tmp_path / "b", [_trial(value=0.667, reference=True), _trial(value=0.889)],
                    metric="val_accuracy", attrs={"val_samples": 9}, name="b")
    assert selected_trial(beyond)[0].number == 1
    # no validation size recorded (older studies), or a metric that is not a sample count: the best
    unknown = _study(tmp_path / "c", [_trial(value=0.778, reference=True), _trial(value=0.889)],
                     metric="val_accuracy")
    trial, reason = selected_trial(unknown)
    assert trial.number == 1 and "no noise estimate" in reason


def test_a_gain_equal_to_the_noise_keeps_the_defaults_whatever_the_rounding(tmp_path):
    # exactly one of 10 validation samples better: 0.8 - 0.7 is 0.10000000000000009 in floating point
    assert 0.8 - 0.7 > 0.1
    tied = _study(tmp_path, [_trial(value=0.7, reference=True), _trial(value=0.8)],
                  metric="val_accuracy", attrs={"val_samples": 10})
    trial, reason = selected_trial(tied)
    assert trial.number == 0 and "within the validation noise" in reason
    two_samples = _study(tmp_path / "b", [_trial(value=0.7, reference=True), _trial(value=0.9)],
                         metric="val_accuracy", attrs={"val_samples": 10}, name="b")
    assert selected_trial(two_samples)[0].number == 1
    # paired folds whose standard error equals the gain: the defaults stay
    reference, best = [0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.9]
    differences = np.subtract(best, reference)
    assert math.isclose(differences.mean(), differences.std(ddof=1) / math.sqrt(4))
    folds = _study(tmp_path / "c", [_trial(reference, reference=True), _trial(best)], name="c")
    assert selected_trial(folds)[0].number == 0


def test_fold_noise_needs_paired_folds():
    assert fold_noise(_trial(NEAR), _trial(REFERENCE[:4])) is None
    assert fold_noise(_trial(value=0.7), _trial(REFERENCE)) is None
    assert fold_noise(_trial([0.7]), _trial([0.6])) is None


def test_trials_without_a_study_are_selected_too(tmp_path):
    trials = _study(tmp_path, [_trial(REFERENCE, reference=True), _trial(NEAR)]).get_trials()
    assert selected_trial(trials)[0].number == 0


def test_export_and_headline_follow_the_selection(tmp_path, capsys):
    study = _study(tmp_path, [_trial(REFERENCE, reference=True), _trial(NEAR, c=30.0)], name="near")
    url = f"sqlite:///{tmp_path / 'sel.db'}"
    config = export_trial(study)
    assert config["source"]["trial"] == 0 and config["source"]["best_trial"] == 1
    assert "within the fold noise" in config["source"]["selection"]
    assert export_trial(study, best=True)["source"]["trial"] == 1
    assert export_trial(study, 1)["source"]["trial"] == 1 and "selection" not in export_trial(study, 1)["source"]

    lines = compute_headline(study).lines()
    assert lines[0].startswith("winner:  trial 1,")
    assert "selected: trial 0 (the defaults): trial 1's gain +0.0140 is within the fold noise (1 SE 0.0525)" in lines
    from hpo.browse._report import headline_html  # the report's first screen says it too

    page = headline_html(compute_headline(study), "near")
    assert "Selected (what <code>hpo export</code> exports): trial 0 (the defaults)" in page

    assert main(["export", "near", "--storage", url, "--out", str(tmp_path / "sel.toml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("exported trial 0 of near") and "selected: trial 0 (the defaults)" in out
    assert "kept: the best, trial 1, does not beat it by more than the noise" in out
    assert main(["export", "near", "--storage", url, "--best", "--out", str(tmp_path / "best.toml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("exported trial 1 of near") and "selected:" not in out
    assert "+0.0140 val_balanced_accuracy over the reference" in out


def test_two_folds_are_no_noise_estimate_one_validation_sample_is(tmp_path):
    """The 8-tissue 2-fold SVC of RESULTS.md: both folds gained about the same, so 1 SE ~ 0 let any gain pass."""
    reference, small, large = [0.125, 0.125], [0.165, 0.165], [0.354, 0.354]
    attrs = {"val_samples": 10}
    study = _study(tmp_path / "a", [_trial(reference, reference=True), _trial(small, c=30.0)], attrs=attrs)
    selection = study_selection(study)
    assert fold_noise(selection.best, selection.reference) == pytest.approx(0.0, abs=1e-12)
    assert selection.kept_reference and selection.noise == pytest.approx(0.1)  # +0.04 < one of 10 samples
    assert "only 2 CV folds, fewer than 3 for an SE alone" in selection.reason
    study = _study(tmp_path / "b", [_trial(reference, reference=True), _trial(large, c=30.0)], attrs=attrs)
    assert study_selection(study).trial.number == 1  # +0.229 > 0.1: a real gain still wins


def test_two_folds_without_a_per_sample_noise_keep_the_defaults(tmp_path):
    study = _study(tmp_path, [_trial([1.0, 1.0], reference=True), _trial([0.5, 0.5], c=30.0)],
                   direction="minimize", metric="val_reconstruction_mse")
    selection = study_selection(study)
    assert selection.kept_reference and "over only 2 CV folds" in selection.reason
    # three folds: the SE is taken as it is
    study = _study(tmp_path / "3", [_trial([1.0, 1.0, 1.0], reference=True), _trial([0.5, 0.5, 0.5], c=30.0)],
                   direction="minimize", metric="val_reconstruction_mse", name="k3")
    assert study_selection(study).trial.number == 1
