"""The sampler comparison: engine, tables, report and the ``hpo compare`` command."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from hpo.browse import ranking_table, write_comparison_report
from hpo.browse._compare_report import comparison_figure, figure_panels, not_reached_level
from hpo.cli import main
from hpo.compare import (
    ComparisonPlan,
    ProblemSource,
    best_at,
    rank_samplers,
    run_comparison,
    summarize,
    trials_to_target,
    verdict,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPHERE = ProblemSource("function", "sphere")


def _plan(prefix: str, samplers=("tpe", "ga", "random"), seeds=(0, 1), n_trials=12, **kwargs) -> ComparisonPlan:
    return ComparisonPlan(SPHERE, tuple(samplers), tuple(seeds), n_trials, prefix, **kwargs)


@pytest.fixture(scope="module")
def sphere_trials() -> pd.DataFrame:
    return run_comparison(_plan("t", n_trials=30, sampler_options={"ga": {"population_size": 6}}))


def test_one_study_per_sampler_and_seed_with_running_best_and_sampler_time(sphere_trials) -> None:
    counts = sphere_trials.groupby(["sampler", "seed"]).size()
    assert counts.to_dict() == {(s, seed): 30 for s in ("ga", "random", "tpe") for seed in (0, 1)}
    assert set(sphere_trials["study"]) == {f"t/{s}/seed{seed}" for s in ("tpe", "ga", "random") for seed in (0, 1)}
    for _, study in sphere_trials.groupby("study"):
        best = study.sort_values("number")["best_so_far"].to_numpy()
        assert np.all(np.diff(best) <= 0)
        assert best[-1] == study["value"].min()
    assert (sphere_trials["sampler_s"] > 0).all()
    # TPE fits a model per trial; random draws numbers: its overhead must be clearly larger
    per_sampler = sphere_trials.groupby("sampler")["sampler_s"].median()
    assert per_sampler["tpe"] > 3 * per_sampler["random"]


def test_summary_and_budget_tables(sphere_trials) -> None:
    summary = summarize(sphere_trials, "minimize", target=5.0).set_index("sampler")
    finals = sphere_trials.groupby(["sampler", "seed"])["best_so_far"].last()
    assert summary.loc["ga", "best_mean"] == pytest.approx(finals["ga"].mean())
    assert summary.loc["random", "best_std"] == pytest.approx(finals["random"].std(ddof=1))
    assert (summary["pruned_fraction"] == 0).all()
    budgets = best_at(sphere_trials, [10, 30]).set_index(["sampler", "budget"])
    assert budgets.loc[("tpe", 30), "mean"] <= budgets.loc[("tpe", 10), "mean"]
    assert budgets.loc[("tpe", 30), "mean"] == pytest.approx(summary.loc["tpe", "best_mean"])


def test_trials_to_target_counts_trials_until_first_reached() -> None:
    table = pd.DataFrame({
        "sampler": ["a"] * 4 + ["b"] * 4,
        "seed": [0] * 8,
        "number": [0, 1, 2, 3] * 2,
        "best_so_far": [5.0, 3.0, 0.9, 0.1, 5.0, 4.0, 4.0, 2.0],
    })
    needed = trials_to_target(table, "minimize", 1.0).set_index("sampler")["trials_to_target"]
    assert needed["a"] == 3 and np.isnan(needed["b"])
    needed = trials_to_target(table, "maximize", 4.5).set_index("sampler")["trials_to_target"]
    assert needed.to_dict() == {"a": 1.0, "b": 1.0}


def _hand_table() -> pd.DataFrame:
    """Three samplers, two seeds each, four trials: a reaches 1.0 fast, b slowly on one seed, c never."""
    finals = {"a": ([5.0, 0.9, 0.5, 0.5], [4.0, 3.0, 0.8, 0.2]), "b": ([6.0, 2.0, 2.0, 0.7], [6.0, 5.0, 4.0, 3.0]),
              "c": ([9.0, 8.0, 7.0, 6.0], [9.0, 8.5, 8.0, 7.5])}
    rows = []
    for sampler, seeds in finals.items():
        for seed, values in enumerate(seeds):
            for number, value in enumerate(values):
                rows.append({"sampler": sampler, "seed": seed, "number": number, "state": "COMPLETE",
                             "value": value, "best_so_far": value, "elapsed_s": 0.5 * (number + 1),
                             "sampler_s": 0.001})
    return pd.DataFrame(rows)


def test_ranking_names_the_winner_and_marks_samplers_that_never_reached_the_target() -> None:
    table = _hand_table()
    summary = summarize(table, "minimize", 1.0, {"b": {"population_size": 4}})
    assert summary.set_index("sampler").loc["a", "seconds_to_target_median"] == pytest.approx(1.25)  # 1.0 and 1.5
    ranking = rank_samplers(summary, "minimize")
    assert list(ranking["sampler"]) == ["a", "b", "c"]
    assert list(ranking["rank_by_target"]) == [1, 2, 3]
    assert ranking.set_index("sampler").loc["b", "sampler_options"] == '{"population_size": 4}'
    lines = verdict(ranking, "minimize", 1.0)
    assert lines[0].startswith("Winner by best value: a (mean best 0.35")
    assert any(line.startswith("Fastest to the target 1: a (reached on 2/2 seeds, median 2.5 trials") for line in lines)
    assert "Never reached the target: c." in lines
    shown = ranking_table(ranking, 1.0).set_index("sampler")
    assert shown.loc["c", "trials_to_target_median"] == "not reached (mean best 6.75)"
    assert shown.loc["b", "reached_target"] == "1/2" and shown.loc["a", "sampler_options"] == "defaults"
    # maximising flips the order: c has the highest values
    assert list(rank_samplers(summarize(table, "maximize", None), "maximize")["sampler"]) == ["c", "b", "a"]
    assert verdict(rank_samplers(summarize(table, "maximize", None), "maximize"), "maximize", None)[-1] == (
        "No target given: no ranking by time to target (use --target).")


def test_figure_shows_not_reached_and_leaves_out_empty_panels() -> None:
    table = _hand_table()
    assert figure_panels(table, 1.0) == ["by_trial", "by_time", "final", "to_target", "overhead"]  # none pruned
    assert figure_panels(table, None) == ["by_trial", "by_time", "final", "overhead"]
    figure = comparison_figure(table, "minimize", 1.0)
    assert not [t for t in figure.data if t.type == "bar"]
    missed = {t.name: t for t in figure.data if t.type == "scatter" and t.name.endswith("not reached")}
    assert set(missed) == {"b not reached", "c not reached"}
    assert list(missed["c not reached"].text) == ["not reached<br>mean best 6.75", ""]
    assert list(missed["b not reached"].text) == ["not reached"]
    assert list(missed["b not reached"].y) == [not_reached_level(4)] and not_reached_level(4) > 4  # above the budget
    pruned = table.copy()
    pruned.loc[pruned["number"] == 3, "state"] = "PRUNED"
    assert "pruned" in figure_panels(pruned, 1.0)


def test_report_has_one_curve_per_sampler(sphere_trials, tmp_path) -> None:
    figure = comparison_figure(sphere_trials, "minimize", 5.0, "t")
    curves = [t.name for t in figure.data if t.type == "scatter" and t.mode == "lines" and t.xaxis == "x"]
    assert sorted(curves) == ["ga", "random", "tpe"]
    by_time = [t.name for t in figure.data if t.type == "scatter" and t.xaxis == "x2"]
    assert sorted(by_time) == ["ga", "random", "tpe"]
    paths = write_comparison_report(sphere_trials, summarize(sphere_trials, "minimize", 5.0), tmp_path,
                         direction="minimize", target=5.0, title="t")
    page = paths["report"].read_text()
    assert "best so far vs trial" in page and page.count('"name":"tpe"') >= 3
    assert "Winner by best value" in page and "pruned fraction of trials" not in page
    assert len(pd.read_csv(paths["trials"])) == len(sphere_trials)


@pytest.mark.slow
def test_hpo_compare_command_writes_grouped_studies_and_report(tmp_path, unique_name, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'cmp.db'}"
    args = ["compare", "--function", "classifier-surrogate", "--samplers", "ga,random", "--seeds", "2",
            "--n-trials", "8", "--storage", url, "--name", unique_name, "--out", str(tmp_path / "out"),
            "--sampler-option", "ga.population_size=4"]
    assert main(args) == 0
    storage = optuna.storages.RDBStorage(url)
    studies = {s.study_name: s for s in optuna.get_all_study_summaries(storage)}
    assert set(studies) == {f"{unique_name}/{s}/seed{n}" for s in ("ga", "random") for n in (0, 1)}
    attrs = studies[f"{unique_name}/ga/seed1"].user_attrs
    assert attrs["comparison"] == unique_name and attrs["sampler"] == "ga" and attrs["seed"] == 1
    assert attrs["sampler_options"]["population_size"] == 4 and attrs["target"] == pytest.approx(0.9)
    assert studies[f"{unique_name}/ga/seed1"].direction == optuna.study.StudyDirection.MAXIMIZE
    assert len(pd.read_csv(tmp_path / "out" / "trials.csv")) == 32
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("sampler")
    assert summary.loc["ga", "sampler_options"] == '{"population_size": 4}'
    out = capsys.readouterr().out
    assert "report.html" in out and "Winner by best value: " in out
    # the same name again resumes: every study already has its trials, none are added
    assert main(args) == 0
    assert len(optuna.load_study(study_name=f"{unique_name}/ga/seed0", storage=storage).trials) == 8


@pytest.mark.slow
def test_two_workers_share_each_study(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    trials = run_comparison(_plan("w", samplers=("ga",), seeds=(3,), n_trials=24, workers=2,
                                  sampler_options={"ga": {"population_size": 4}}), url)
    assert len(trials) == 24 and (trials["state"] == "COMPLETE").all()
    study = optuna.load_study(study_name="w/ga/seed3", storage=url)
    assert len(study.trials) == 24  # exactly: the workers share hpo.worker's admission lock
    assert len({t.user_attrs.get("worker") for t in study.trials}) == 2  # and both ran trials
    points = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(points) == 24  # workers are seeded apart: no point drawn twice


def test_test_functions_compare_in_memory_unless_a_storage_is_given(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HPO_HOME", str(tmp_path))
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    args = ["compare", "--function", "sphere", "--samplers", "random", "--seeds", "1", "--n-trials", "5",
            "--name", "mem", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert "in memory (nothing kept" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.db")) and (tmp_path / "out" / "report.html").is_file()


def test_a_resumed_comparison_draws_new_points_and_a_fresh_one_reproduces(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    run_comparison(_plan("r", samplers=("random",), seeds=(0,), n_trials=4), url)
    run_comparison(_plan("r", samplers=("random",), seeds=(0,), n_trials=8), url)  # the same name resumes
    resumed = optuna.load_study(study_name="r/random/seed0", storage=url).trials
    assert len({tuple(sorted(t.params.items())) for t in resumed}) == 8
    run_comparison(_plan("again", samplers=("random",), seeds=(0,), n_trials=4), url)
    fresh = optuna.load_study(study_name="again/random/seed0", storage=url).trials
    assert [t.params for t in fresh] == [t.params for t in resumed[:4]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "--function", "nope"], "unknown test function 'nope'"),
        (["compare", "--function", "sphere", "--samplers", "tpe,anneal", "--storage", "memory"], "anneal"),
        (["compare"], "either a study file or --function"),
        (["compare", "--function", "sphere", "--storage", "memory", "--sampler-option", "ga.bogus=1",
          "--samplers", "ga"], "bogus"),
        (["compare", "no/such/study.toml"], "no such study file"),
    ],
)
def test_bad_input_gets_a_one_line_error(args, message, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=50 keeps it quick
@pytest.mark.slow
def test_study_file_mode_reuses_the_study_objective_pruner_and_attributes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HPO_HOME", str(tmp_path))
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = ["compare", "studies/logistic_regression.toml", "--set", "data.preset=tiny", "--set",
            "fixed.max_iter=50", "--samplers", "ga,random", "--seeds", "1", "--n-trials", "3",
            "--storage", url, "--name", "lr", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    study = optuna.load_study(study_name="lr/ga/seed0", storage=url)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs["model"] == "logistic_regression" and study.user_attrs["sampler"] == "ga"
    assert study.user_attrs["comparison"] == "lr"
    assert len(study.trials) == 3
    # the file's Wilcoxon pruner is in use: trials report fold-wise intermediate values
    assert all(t.intermediate_values for t in study.trials)
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary["sampler"]) == ["ga", "random"]
