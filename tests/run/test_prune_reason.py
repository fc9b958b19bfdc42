"""Why a trial was pruned, with the threshold it lost to, recomputed as each Optuna pruner decides (real SQLite)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from hpo.run._objective import _Progress, _reporter
from hpo.samplers import build_pruner
from hpo.storage import BufferedReports, open_storage

METRIC = "val_balanced_accuracy"


def _study(tmp_path, pruner, curves, direction="maximize"):
    storage = open_storage(f"sqlite:///{tmp_path / 'p.db'}", heartbeat_interval=None)
    study = optuna.create_study(storage=storage, direction=direction, pruner=pruner)
    for curve in curves:  # complete trials with these per-step values (their value: the last one)
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=curve[-1], params={}, distributions={},
                                     intermediate_values=dict(enumerate(curve, start=1))))
    return study


def _prune(study, values):
    """Report ``values`` step by step through the objective's reporter until the pruner stops the trial."""
    trial = study.ask()
    outcome: dict = {}
    report = _reporter(trial, BufferedReports(trial), METRIC, _Progress(), outcome)
    with pytest.raises(optuna.TrialPruned) as pruned:
        for step, value in enumerate(values, start=1):
            report(step, {METRIC: value, "train_loss": 1.0})
    assert outcome["prune_reason"] == str(pruned.value)
    return str(pruned.value)


def test_the_median_pruner_names_the_median_it_lost_to(tmp_path):
    curves = [[0.5, 0.6, 0.7], [0.55, 0.62, 0.8], [0.4, 0.5, 0.6]]
    study = _study(tmp_path, build_pruner("median", {"n_startup_trials": 1, "n_warmup_steps": 2}), curves)
    reason = _prune(study, [0.45, 0.41])  # step 1 is warm-up; at step 2 its best (0.45) is under the median
    median = float(np.median([c[1] for c in curves]))
    assert reason == (f"pruned by MedianPruner at step 2: best {METRIC} so far 0.45 < median {median:.4g} "
                      "of 3 complete trials at step 2")


def test_a_percentile_pruner_names_its_cut_and_minimising_turns_the_sign(tmp_path):
    curves = [[1.0, 0.9], [1.2, 1.1], [0.8, 0.7], [1.1, 1.0]]
    study = _study(tmp_path, build_pruner("percentile", {"percentile": 25.0, "n_startup_trials": 1}), curves,
                   direction="minimize")
    reason = _prune(study, [1.5])
    cut = float(np.percentile([c[0] for c in curves], 25))
    assert reason == (f"pruned by PercentilePruner at step 1: best {METRIC} so far 1.5 > {cut:.4g}, the cut that keeps "
                      "the best 25% of 4 complete trials at step 1")


def test_the_wilcoxon_pruner_names_the_p_value_and_its_threshold(tmp_path):
    folds = [0.9, 0.92, 0.88, 0.91, 0.9, 0.93, 0.89, 0.9]
    study = _study(tmp_path, build_pruner("wilcoxon", {"p_threshold": 0.1}), [folds])
    reason = _prune(study, [0.5, 0.52, 0.48, 0.51, 0.5, 0.53, 0.49, 0.5])
    assert reason.startswith("pruned by WilcoxonPruner at step ")
    assert " vs best trial 0's " in reason and "Wilcoxon p = " in reason and reason.endswith("< p_threshold 0.1")
    p = float(reason.split("Wilcoxon p = ")[1].split(" <")[0])
    assert 0 < p < 0.1


def test_successive_halving_names_its_reduction_factor(tmp_path):
    study = _study(tmp_path, build_pruner("successive_halving", {"min_resource": 1, "reduction_factor": 3}), [])
    for value in (0.8, 0.85, 0.9):  # each the best so far: promoted, as workers run them
        trial = study.ask()
        _reporter(trial, BufferedReports(trial), METRIC, _Progress(), {})(1, {METRIC: value})
        study.tell(trial, value)
    reason = _prune(study, [0.1, 0.1, 0.1])
    assert reason == (f"pruned by SuccessiveHalvingPruner at step 1: {METRIC}=0.1 not among the best 1/3 of the "
                      "trials that reached this rung")
