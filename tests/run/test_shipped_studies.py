"""Every shipped study file runs its whole (shrunk) trial budget on tiny data: no stall, no failure."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.run import run_worker
from hpo.study import load_study_file

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))
N_TRIALS = 3


@pytest.fixture(autouse=True, scope="module")
def _private_run_directory(tmp_path_factory):
    """Artifacts and locks of these runs go to a temporary run directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPO_HOME", str(tmp_path_factory.mktemp("hpo-home")))
        yield


def tiny_overrides(path: Path, cache_dir: str) -> dict:
    """The `--set` overrides that shrink a shipped study to seconds: tiny data, few epochs, small forests."""
    spec = load_study_file(path)
    overrides: dict = {"n_trials": N_TRIALS, "data.preset": "tiny", "data.cache_dir": cache_dir, "device": "cpu"}
    if "max_epochs" in spec.fixed:
        overrides["fixed.max_epochs"] = 3
    if "ae_max_epochs" in spec.fixed:
        overrides["fixed.ae_max_epochs"] = 2
    if spec.model == "random_forest":
        overrides["space.n_estimators.high"] = 150
    return overrides


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
@pytest.mark.slow
def test_shipped_study_finishes_its_budget(tmp_path, tiny_dataset, tiny_data_config, path):
    spec = load_study_file(path, tiny_overrides(path, str(tiny_data_config.cache_dir)))
    assert spec.warnings == ()  # no shipped study pairs a COMPLETE-only sampler with a pruner
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_worker(spec, storage_url=url, worker_index=0, num_threads=1)
    trials = optuna.load_study(study_name=spec.name, storage=url).get_trials()
    states = [t.state for t in trials]
    reasons = [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in trials]
    assert len(trials) == N_TRIALS and TrialState.FAIL not in states, reasons
    assert states.count(TrialState.COMPLETE) >= 1, reasons
    # the sampler explores: no configuration is proposed twice (what the GP sampler did under Wilcoxon pruning)
    configurations = {json.dumps(t.params, sort_keys=True) for t in trials}
    assert len(configurations) == N_TRIALS, [t.params for t in trials]
