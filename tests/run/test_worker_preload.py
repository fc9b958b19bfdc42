"""The worker freezes the collector after the first trial's lazy imports (torch._dynamo, plotly), not before."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from hpo.run._worker import preload_trial_imports
from tests.run.test_workers import sqlite_url, tiny_study

PROBE = textwrap.dedent("""
    import gc, json, sys
    seen = {}
    freeze = gc.freeze
    def recording_freeze():
        seen["modules"] = set(sys.modules)
        freeze()
    gc.freeze = recording_freeze
    from hpo.run import run_worker
    from hpo.study import load_study_file
    report = run_worker(load_study_file(sys.argv[1]), storage_url=sys.argv[2], worker_index=0, num_threads=1)
    gc.collect()
    print(json.dumps({
        "complete": report.complete,
        "dynamo_at_freeze": "torch._dynamo" in seen["modules"],
        "imported_after": sorted(set(sys.modules) - seen["modules"]),
        "tracked_after": len(gc.get_objects()),
    }))
""")


@pytest.mark.slow
def test_a_fresh_worker_freezes_after_the_lazy_imports_so_the_per_trial_collection_stays_small(
    tmp_path, tiny_dataset, tiny_data_config
):
    path = tiny_study(tmp_path, tiny_data_config, name="preload", n_trials=2, **{"fixed.max_epochs": 2})
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), sqlite_url(tmp_path)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["complete"] == 2
    assert result["dynamo_at_freeze"]
    assert len(result["imported_after"]) < 20, result["imported_after"]
    # before the preload: ~157k objects left for every per-trial gc.collect() (torch._dynamo, sympy, plotly)
    assert result["tracked_after"] < 50_000


def test_preload_imports_what_the_model_family_needs() -> None:
    assert "torch._dynamo" in preload_trial_imports("classifier")
    assert "torch._dynamo" not in preload_trial_imports("random_forest")
    assert preload_trial_imports("no such model") == []
