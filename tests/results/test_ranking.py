"""THE ranking: value, then the smooth tie_break_loss, then the trial number; every consumer agrees (real SQLite)."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from hpo.results import (
    StandingsTracker,
    best_trial,
    compute_headline,
    is_new_best,
    ranked_trials,
    standings_of,
    top_trials,
)


def _study(tmp_path, rows, direction="maximize"):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s", direction=direction)
    for value, tie in rows:
        attrs = {} if tie is None else {"tie_break_loss": tie}
        study.add_trial(create_trial(value=value, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                     user_attrs=attrs))
    return study


def test_equal_values_rank_by_the_tie_break_then_by_number(tmp_path):
    # trials 0..4: three tie at 0.9; trial 3 has the lowest loss, trial 4 none at all (ranks after those with one)
    study = _study(tmp_path, [(0.9, 0.8), (0.7, 0.1), (0.9, 0.5), (0.9, 0.2), (0.9, None)])
    order = [t.number for t in ranked_trials(study.get_trials(), study.directions)]
    assert order == [3, 2, 0, 4, 1]
    assert best_trial(study).number == 3 and compute_headline(study).winner.number == 3
    assert compute_headline(study).runner_up.number == 2
    # the small-query path (SQLite) reads the trials tied with the k-th and orders them by the tie-break too
    assert [t.number for t in top_trials(study, 2)] == [3, 2]
    # a running trial reaching 0.9 is a new best only with a lower loss than the winner's
    assert is_new_best(study, 0.9, 0.1) and not is_new_best(study, 0.9, 0.2) and not is_new_best(study, 0.9, None)
    assert is_new_best(study, 0.95, None) and not is_new_best(study, 0.8, 0.0)


def test_minimising_studies_use_the_same_tie_break(tmp_path):
    study = _study(tmp_path, [(0.3, 0.9), (0.3, 0.4), (0.2, 5.0)], direction="minimize")
    assert [t.number for t in ranked_trials(study.get_trials(), study.directions)] == [2, 1, 0]
    assert is_new_best(study, 0.2, 4.0) and not is_new_best(study, 0.2, 6.0)


def test_a_workers_standings_agree_with_the_full_ranking_trial_by_trial(tmp_path):
    study = _study(tmp_path, [(0.9, 0.8)])
    tracker = StandingsTracker(study)
    tracker.update()
    for value, tie in [(0.9, 0.3), (0.5, 0.1), (0.9, 0.3), (0.9, 0.05), (0.8, None)]:
        study.add_trial(create_trial(value=value, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                     user_attrs={"tie_break_loss": tie} if tie is not None else {}))
        kept = tracker.update()
        full = standings_of(study.get_trials(), study.directions)
        assert [t.number for t in kept.ranked] == [t.number for t in full.ranked]
    ranks = {t.number: full.rank_of(t, maximize=True) for t in study.get_trials()}
    assert ranks == {4: 1, 1: 2, 3: 3, 0: 4, 5: 5, 2: 6}
    small = standings_of(study.get_trials(), study.directions)
    small.ranked = small.ranked[:1]  # a rank beyond the kept few follows the same order
    assert {t.number: small.rank_of(t, maximize=True) for t in study.get_trials()} == ranks
