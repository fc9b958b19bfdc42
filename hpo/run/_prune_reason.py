"""Why a trial was pruned, with the threshold it lost to: one sentence for its note and the worker's log.

Optuna's pruners say only yes or no. When one says yes, this module recomputes what it compared,
the way Optuna computes it: the median (or percentile) of the complete trials' values at that step
against the trial's best value so far; the Wilcoxon signed-rank p-value against the best trial,
with the pruner's p threshold; the successive-halving cut (the best 1/η of the rung). Anything it
cannot recompute still gets the pruner's name, the step and the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from hpo.storage import cached_trial, pruner_setting


def prune_reason(trial: optuna.Trial, step: int, metric: str, value: float) -> str:
    """``pruned by MedianPruner at step 5: best val_x so far 0.6694 < median 0.7021 of 3 complete trials at step 5``."""
    pruner = trial.study.pruner
    head = f"pruned by {type(pruner).__name__} at step {step}"
    try:
        why = _threshold(trial, pruner, step, metric, value)
    except Exception:  # the reason must never cost the trial its pruning
        why = None
    return f"{head}: {why}" if why else f"{head}: {metric}={value:.4g}"


def _threshold(trial: optuna.Trial, pruner: optuna.pruners.BasePruner, step: int, metric: str, value: float) -> str | None:
    cached = cached_trial(trial)
    reported: Mapping[int, float] = cached.intermediate_values if cached is not None else {step: value}
    maximize = trial.study.direction == StudyDirection.MAXIMIZE
    if isinstance(pruner, optuna.pruners.PercentilePruner):  # MedianPruner is one (50th)
        return _percentile_reason(trial, pruner, step, metric, reported, maximize)
    if isinstance(pruner, optuna.pruners.WilcoxonPruner):
        return _wilcoxon_reason(trial, pruner, metric, reported, maximize)
    if isinstance(pruner, (optuna.pruners.SuccessiveHalvingPruner, optuna.pruners.HyperbandPruner)):
        factor = pruner_setting(pruner, "reduction_factor")
        cut = f"the best 1/{factor}" if isinstance(factor, (int, float)) else "the promoted share"
        return f"{metric}={value:.4g} not among {cut} of the trials that reached this rung"
    return None


def _percentile_reason(
    trial: optuna.Trial, pruner: optuna.pruners.BasePruner, step: int, metric: str, reported: Mapping[int, float],
    maximize: bool,
) -> str | None:
    """Optuna's rule: the trial's best value up to ``step`` against a percentile of the complete trials' at ``step``."""
    percentile = 50.0 if isinstance(pruner, optuna.pruners.MedianPruner) else pruner_setting(pruner, "percentile")
    if not isinstance(percentile, (int, float)):
        return None
    completed = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    others = [t.intermediate_values[step] for t in completed if step in t.intermediate_values]
    if not others:
        return None
    threshold = float(np.nanpercentile(np.array(others, dtype=float), 100 - percentile if maximize else percentile))
    mine = [v for s, v in reported.items() if s <= step and math.isfinite(v)]
    if not mine:
        return f"{metric} is not finite; {len(others)} complete trial(s) reported step {step}"
    best = max(mine) if maximize else min(mine)
    sign = "<" if maximize else ">"
    if isinstance(pruner, optuna.pruners.MedianPruner):
        cut = f"median {threshold:.4g}"
    else:
        cut = f"{threshold:.4g}, the cut that keeps the best {percentile:g}%"
    return (f"best {metric} so far {best:.4g} {sign} {cut} of {len(others)} complete trial"
            f"{'s' if len(others) != 1 else ''} at step {step}")


def _wilcoxon_reason(
    trial: optuna.Trial, pruner: optuna.pruners.BasePruner, metric: str, reported: Mapping[int, float], maximize: bool,
) -> str | None:
    """Optuna's rule: a one-sided Wilcoxon signed-rank test of this trial's step values against the best trial's."""
    from scipy import stats

    threshold = pruner_setting(pruner, "p_threshold")
    try:
        best = trial.study.best_trial
    except ValueError:
        return None
    steps = sorted(set(reported) & set(best.intermediate_values))
    if len(steps) < 2:
        return None
    differences = np.array([reported[s] - best.intermediate_values[s] for s in steps], dtype=float)
    p = stats.wilcoxon(differences, alternative="less" if maximize else "greater", zero_method="zsplit").pvalue
    mean = float(np.mean([reported[s] for s in steps]))
    limit = f" < p_threshold {threshold:g}" if isinstance(threshold, (int, float)) else ""
    return (f"mean {metric} {mean:.4g} over {len(steps)} steps vs best trial {best.number}'s "
            f"{float(np.mean([best.intermediate_values[s] for s in steps])):.4g}: Wilcoxon p = {p:.3g}{limit}")
