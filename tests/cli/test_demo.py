"""`hpo demo` end to end on tiny data: the study's status lines, retrain progress, test metrics beside a
baseline, one total time, and the same headline as `hpo show` (real workers, real SQLite)."""

from __future__ import annotations

import re

import optuna
import pytest

from hpo.cli import main
from hpo.results import FINAL_MODEL_ATTR, read_config
from hpo.run import DemoObserver, run_demo


@pytest.mark.slow
def test_demo_runs_end_to_end_on_tiny_data(tmp_path, tiny_data_config, capsys, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path))
    code = main([
        "demo", "--n-trials", "3", "--set", "data.preset=tiny", "--set", f"data.cache_dir={tiny_data_config.cache_dir}",
        "--set", "fixed.max_epochs=6",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    best = next(tmp_path.glob("demo/demo-*/best.toml"))
    name = best.parent.name
    # hpo run's status lines (only news, indented under step 2), no "0 of 2 workers left" at a normal finish
    status = [line for line in lines if " finished (" in line]
    assert status and all(line.startswith("      [") for line in status) and len(status) == len(set(status))
    assert "3/3 finished" in status[-1] and "workers left" not in printed
    # the retrain says how far it is: epochs of the planned total, seconds per epoch, ETA, then done
    epochs = [line for line in lines if re.match(r" {6}epoch \d+/\d+, [\d.]+ s/epoch", line)]
    planned = int(re.search(r"(\d+) epochs: the trial's best epoch count", printed).group(1))
    assert epochs[0].startswith("      epoch 1/") and epochs[-1].startswith(f"      epoch {planned}/{planned},")
    assert "ETA " in epochs[0] and epochs[-1].endswith(tuple(f"done in 00:{s:02d}" for s in range(60)))
    # the test metrics beside the baseline, then one total time
    header = lines.index("[5/5] held-out test metrics of the final model")
    assert lines[header + 1].split() == ["final", "model", "defaults", "baseline"]  # the reference trial, retrained
    accuracy = lines[header + 2].split()
    assert accuracy[0] == "test_accuracy" and 0 < float(accuracy[3]) < 1  # the majority tissue's share of the test split
    assert any(line.startswith("      baseline: every test sample called ") for line in lines)
    assert [line for line in lines if line.startswith("done in ")] == [next(l for l in lines if l.startswith("done in "))]
    assert "in all" not in printed and "(1m" not in printed
    # the headline, the same as hpo show prints, with the final model's test metrics recorded in the study
    headline = [line for line in lines if line.startswith(("winner: ", "gain: ", "selected: ", "test: ", "export: ",
                                                           "retrain: "))]
    names = [line.split(":", 1)[0] for line in headline]  # selected: when a tuned trial beat a complete reference
    assert names in (["winner", "gain", "test", "export", "retrain"], ["winner", "gain", "selected", "test", "export", "retrain"])
    assert "over the reference (trial 0, the defaults" in headline[1] or "the reference trial (the defaults) won" in headline[1]
    assert "the defaults: test_accuracy" in headline[names.index("test")] or "final model of trial 0" in headline[names.index("test")]
    assert f"\nconfig:  {best}   (retrain: hpo train --config {best})" in printed
    assert main(["show", name]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[1:1 + len(headline)] == headline
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert study.user_attrs[FINAL_MODEL_ATTR]["trial"] == read_config(best)["source"]["trial"]
    assert (best.parent / "final" / "metrics.json").is_file()
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))) == 3


@pytest.mark.slow
def test_run_demo_reports_each_step_to_its_observer(tmp_path, tiny_data_config, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path))

    class Seen(DemoObserver):
        def __init__(self):
            self.steps, self.epochs, self.planned = [], [], None

        def step(self, number, total, title):
            self.steps.append((number, total))

        def retrain_planned(self, epochs, split):
            self.planned = epochs

        def retrain_epoch(self, progress):
            self.epochs.append(progress)

    seen = Seen()
    result = run_demo("studies/demo.toml", workers=1, observer=seen, overrides={
        "n_trials": 2, "data.preset": "tiny", "data.cache_dir": str(tiny_data_config.cache_dir), "fixed.max_epochs": 5})
    assert result.ok and seen.steps == [(n, 5) for n in range(1, 6)]
    final = [p for p in seen.epochs if p.model == "final"]
    assert [p.epoch for p in final] == list(range(1, seen.planned + 1))
    assert all(p.total == seen.planned for p in final)
    # then the reference configuration (the defaults), unless it won and is the final model
    assert all(p.model == "reference" for p in seen.epochs[len(final):])
    assert bool(seen.epochs[len(final):]) == (result.final.reference is not result.final.report)
    assert seen.epochs[-1].eta == 0 and seen.epochs[0].eta > 0
    assert result.headline.final is not None and result.headline.final.metrics == {
        k: v for k, v in result.final.metrics.items() if k.startswith("test_")}
    assert set(result.baseline) == {"test_accuracy", "test_balanced_accuracy", "test_macro_f1"}
