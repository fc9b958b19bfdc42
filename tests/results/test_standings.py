"""A worker's standings, kept trial by trial, equal the standings of a full read (real SQLite, several seeds)."""

from __future__ import annotations

import random

import optuna
import pytest
from optuna.trial import TrialState

from hpo.results import StandingsTracker, standings_of
from hpo.results import _standings as standings_module
from hpo.results._standings import KEEP, KEEP_PRUNED
from hpo.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_tracker_agrees_with_a_full_read(tmp_path, seed, direction):
    rng = random.Random(seed)
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name="s", storage=storage, direction=direction)
    other = optuna.load_study(study_name="s", storage=storage)  # another worker, finishing trials too
    study.enqueue_trial({}, user_attrs={"reference": True})
    tracker = StandingsTracker(study)
    running = []
    for step in range(60):
        if running and rng.random() < 0.6:  # trials finish out of order
            trial = running.pop(rng.randrange(len(running)))
            outcome = rng.random()
            if outcome < 0.55:
                trial.study.tell(trial, round(rng.uniform(0, 1), 2))  # ties happen
            elif outcome < 0.85:
                trial.report(rng.uniform(0, 1), 1)
                trial.study.tell(trial, state=TrialState.PRUNED)
            else:
                trial.set_user_attr("fail_reason", rng.choice(["boom", "interrupted"]))
                trial.study.tell(trial, state=TrialState.FAIL)
        else:
            running.append((study if rng.random() < 0.5 else other).ask())
        if step % 7 == 0:
            kept, full = tracker.update(), standings_of(study.get_trials(deepcopy=False), study.directions)
            assert [t.number for t in kept.ranked] == [t.number for t in full.ranked[:KEEP]]
            assert [t.number for t in kept.pruned] == [t.number for t in full.pruned[:KEEP_PRUNED]]
            assert (kept.counts.complete, kept.counts.pruned, kept.counts.failed, kept.counts.running) == (
                full.counts.complete, full.counts.pruned, full.counts.failed, full.counts.running)
            assert getattr(kept.reference, "number", None) == getattr(full.reference, "number", None) == 0
            assert getattr(kept.reference, "state", None) == getattr(full.reference, "state", None)
            maximize = direction == "maximize"
            for trial in full.ranked:
                assert kept.rank_of(trial, maximize) <= full.rank_of(trial, maximize)  # equal up to ties of value
                better = sum(1 for t in full.ranked if (t.value > trial.value if maximize else t.value < trial.value))
                assert kept.rank_of(trial, maximize) >= better + 1


def test_after_the_first_look_it_ranks_only_a_few_trials(tmp_path, monkeypatch):
    storage = open_storage(f"sqlite:///{tmp_path / 'b.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name="b", storage=storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=300)
    tracker = StandingsTracker(study)
    tracker.update()  # the first look reads and ranks every trial
    sizes = []
    real = standings_module.ranked_trials
    monkeypatch.setattr(standings_module, "ranked_trials", lambda trials, d: sizes.append(len(trials)) or real(trials, d))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert tracker.update().counts.complete == 303
    assert sizes and max(sizes) <= KEEP + 3  # the kept best and the new ones, not 303


@pytest.mark.parametrize("maximize", [True, False])
def test_rank_of_is_the_linear_count_as_the_values_grow(maximize):
    """The binary-search rank equals counting every better key, ties of value ordered by tie-break and number."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from hpo.results import TIE_BREAK_ATTR, Counts
    from hpo.results._standings import Standings
    from hpo.results._trials import rank_key

    rng = random.Random(3)
    trials = [create_trial(value=round(rng.random(), 1), params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                           user_attrs={TIE_BREAK_ATTR: round(rng.random(), 1)} if rng.random() < 0.7 else {})
              for _ in range(60)]
    for number, trial in enumerate(trials):
        trial.number = number
    standings = Standings(ranked=[], reference=None, counts=Counts(0, 0, 0, 0, 0), complete_values=[])
    sign = -1.0 if maximize else 1.0
    for grown in (10, 35, 60):  # the tracker appends to complete_values trial by trial
        standings.complete_values += [(t.value, t.user_attrs.get(TIE_BREAK_ATTR, float("inf")), t.number)
                                      for t in trials[len(standings.complete_values):grown]]
        for trial in trials[:grown]:
            mine = rank_key(sign * trial.value, trial.user_attrs.get(TIE_BREAK_ATTR, float("inf")), trial.number)
            linear = 1 + sum(rank_key(sign * v, tie, n) < mine for v, tie, n in standings.complete_values)
            assert standings.rank_of(trial, maximize) == linear


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_tracked_best_is_the_queried_best_while_other_workers_finish_trials(tmp_path, direction):
    from hpo.results import TIE_BREAK_ATTR, best_trial, current_best, is_new_best

    storage = open_storage(f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval=None)
    study = optuna.create_study(study_name="c", storage=storage, direction=direction)
    other = optuna.load_study(study_name="c", storage=storage)  # another worker: this process never saw its trials
    rng = random.Random(5)
    assert current_best(study) is None and is_new_best(study, 0.5, best=current_best(study))
    for step in range(40):
        trial = (study if step % 3 else other).ask()
        value = round(rng.random(), 1)  # ties of value, ordered by the tie-break
        assert is_new_best(study, value, 0.2, best=current_best(study)) == is_new_best(study, value, 0.2)
        trial.set_user_attr(TIE_BREAK_ATTR, round(rng.random(), 1))
        trial.study.tell(trial, value)
        assert current_best(study).number == best_trial(study).number
