"""`hpo abandon`: a RUNNING trial without heartbeat is failed by hand and its configuration re-queued."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from hpo.cli import main
from hpo.results import Counts
from hpo.storage import open_storage


@pytest.fixture
def stuck(tmp_path):
    """A study with one finished trial and one RUNNING trial that never beat (its worker is gone)."""
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat_interval=None), study_name="stuck")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    stuck = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    return url, stuck.params


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="stuck", storage=open_storage(url, heartbeat_interval=None)).get_trials()


def test_abandon_fails_the_trial_and_queues_its_configuration_again(stuck, capsys):
    url, params = stuck
    assert main(["abandon", "stuck", "1", "--storage", url]) == 0
    assert capsys.readouterr().out.strip() == "trial 1 of stuck: failed (abandoned); its configuration is queued again as trial 2"
    trials = _trials(url)
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["fail_reason"] == "abandoned"
    assert trials[2].state == TrialState.WAITING and trials[2].params == params
    assert trials[2].system_attrs["failed_trial"] == 1
    counts = Counts.of(optuna.load_study(study_name="stuck", storage=url))
    assert counts.failed == 0 and counts.running == 0 and counts.waiting == 1  # not a failure of the configuration


def test_abandon_without_requeue(stuck):
    url, _ = stuck
    assert main(["abandon", "stuck", "1", "--no-requeue", "--storage", url]) == 0
    assert [t.state for t in _trials(url)] == [TrialState.COMPLETE, TrialState.FAIL]


@pytest.mark.parametrize("numbers, message", [
    (["0"], "trial 0 of 'stuck' is COMPLETE, not RUNNING"),
    (["7"], "study 'stuck' has no trial 7"),
    (["1", "0"], "trial 0 of 'stuck' is COMPLETE, not RUNNING"),  # checked before anything changes
])
def test_abandon_refuses_what_is_not_running_and_changes_nothing(stuck, capsys, numbers, message):
    url, _ = stuck
    assert main(["abandon", "stuck", *numbers, "--storage", url]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert [t.state for t in _trials(url)] == [TrialState.COMPLETE, TrialState.RUNNING]
