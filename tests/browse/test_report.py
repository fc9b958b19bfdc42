"""`hpo report`: one offline HTML page with every figure, notes where a figure has nothing to say."""

from __future__ import annotations

import json
import re
import warnings

import optuna
import pytest
from plotly.offline import get_plotlyjs

from hpo.browse._report import FIGURES, find_studies, render_report, top_trials
from hpo.cli import main
from hpo.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def storage_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def _pruned_study(storage, name: str = "pruned", sampler: optuna.samplers.BaseSampler | None = None):
    study = optuna.create_study(
        storage=storage, study_name=name, direction="maximize",
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.ThresholdPruner(lower=0.3, n_warmup_steps=1),
    )
    study.set_user_attr("model", "mlp_classifier")
    study.set_user_attr("metric", "val_balanced_accuracy")
    study.set_user_attr("fingerprint", "f00d")

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        width = trial.suggest_categorical("width", [64, 128, 256])
        if width == 256:  # a conditional parameter: most trials lack it
            trial.suggest_float("dropout", 0.0, 0.5)
        score = 0.0
        for step in range(1, 5):
            score = min(1.0, step * 200 * lr) * (width / 256)
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("val_accuracy", score)
        return score

    study.optimize(objective, n_trials=14)  # one thread: the same trials complete every run
    return study


def _figure_json(page: str, element_id: str) -> str:
    """The Plotly.newPlot call of one figure."""
    match = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(element_id)}",(.*?)\)\s*}}', page, re.S)
    assert match, f"no figure {element_id}"
    return match.group(1)


def test_report_holds_every_figure_offline(storage_url, tmp_path):
    study = _pruned_study(open_storage(storage_url))
    assert main(["report", "pruned", "--storage", storage_url, "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")

    for key, title in FIGURES:
        assert f'id="pruned-{key}"' in page, title
        assert f"id='pruned-{key}-note'" not in page  # every figure could be drawn
    assert page.index("id='pruned-headline'") < page.index('id="pruned-history"')  # the answer first
    assert page.index("id='pruned-metadata'") > page.index('id="pruned-timeline"')  # the metadata last
    # by default plotly.js is the shared file beside the page, loaded by relative path: works offline
    assert (tmp_path / "out" / "plotly.min.js").read_text(encoding="utf-8") == get_plotlyjs()
    assert get_plotlyjs()[:200] not in page
    assert re.findall(r"<script[^>]+src='([^']+)'", page) == ["plotly.min.js"]
    assert "id='pruned-importances-warning'" in page and "only 6 completed trials" in page

    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and complete
    intermediate = _figure_json(page, "pruned-intermediate")
    for number in pruned + complete:
        assert f'"Trial{number}"' in intermediate  # what pruning cut is drawn
    timeline = _figure_json(page, "pruned-timeline")
    assert '"PRUNED"' in timeline and '"COMPLETE"' in timeline
    importances = _figure_json(page, "pruned-importances")
    assert '"lr"' in importances and '"width"' in importances
    assert '"dropout"' not in importances  # conditional: would have dropped the trials without it
    parallel = _figure_json(page, "pruned-parallel")
    traces, _ = json.JSONDecoder().raw_decode(parallel[parallel.index("["):])
    lines = [trace for trace in traces if trace.get("mode") == "lines"]
    assert len(lines) == len(complete)  # every completed trial is a line
    assert all(len(line["x"]) == 3 for line in lines)  # objective, lr, width

    assert "f00d" in page and "mlp_classifier" in page  # the study describes itself
    table = top_trials(study, 3)
    assert list(table["trial"]) == [study.best_trial.number] + list(table["trial"][1:])
    assert table["value"].is_monotonic_decreasing and len(table) == 3
    assert "param lr" in table.columns and "val_accuracy" in table.columns


def test_plotly_js_inline_and_cdn_modes(storage_url, tmp_path, capsys):
    _pruned_study(open_storage(storage_url))
    for mode in ("inline", "cdn"):
        out = tmp_path / mode
        assert main(["report", "pruned", "--storage", storage_url, "--out", str(out), "--plotly-js", mode]) == 0
        page = (out / "report.html").read_text(encoding="utf-8")
        assert not (out / "plotly.min.js").exists()
        sources = re.findall(r"<script[^>]+src='([^']+)'", page)
        if mode == "inline":
            assert page.count(get_plotlyjs()[:200]) == 1 and sources == []  # self-contained
        else:
            assert get_plotlyjs()[:200] not in page and len(sources) == 1
            assert sources[0].startswith("https://cdn.plot.ly/plotly-") and "integrity='sha256-" in page
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it, naming the choices
        main(["report", "pruned", "--storage", storage_url, "--out", str(tmp_path), "--plotly-js", "x"])
    assert exit_info.value.code == 2 and "choose from 'shared', 'inline', 'cdn'" in capsys.readouterr().err


def test_importance_warning_threshold(storage_url):
    from hpo.browse._report import IMPORTANCE_MIN_TRIALS, importance_warning, study_figures

    assert importance_warning(IMPORTANCE_MIN_TRIALS) is None
    assert f"only {IMPORTANCE_MIN_TRIALS - 1} completed trials" in importance_warning(IMPORTANCE_MIN_TRIALS - 1)
    study = optuna.create_study(storage=open_storage(storage_url), study_name="enough",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1), n_trials=IMPORTANCE_MIN_TRIALS)
    importances = next(figure for figure in study_figures(study) if figure.key == "importances")
    assert importances.figure is not None and importances.warning is None


def test_empty_and_single_trial_studies_get_notes(storage_url):
    storage = open_storage(storage_url)
    empty = optuna.create_study(storage=storage, study_name="empty")
    single = optuna.create_study(storage=storage, study_name="single")
    single.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    failed = optuna.create_study(storage=storage, study_name="failed")
    failed.optimize(lambda t: float("nan"), n_trials=1)

    page = render_report([empty, single, failed], title="edge cases")
    assert "id='empty-history-note'" in page and "id='empty-timeline-note'" in page
    assert "id='single-importances-note'" in page and "need at least 2 completed trials" in page
    assert 'id="single-history"' in page and 'id="single-timeline"' in page
    assert "id='single-intermediate-note'" in page and "no trial reported intermediate values" in page
    assert "id='failed-history-note'" in page and 'id="failed-timeline"' in page


def test_multi_objective_study(storage_url):
    study = optuna.create_study(storage=open_storage(storage_url), study_name="multi",
                                directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=6)
    page = render_report([study], title="multi")
    for key in ("history", "importances", "parallel", "slice", "timeline"):
        assert f'id="multi-{key}"' in page
    assert "id='multi-intermediate-note'" in page


@pytest.mark.slow
def test_comparison_group_and_unknown_names(storage_url, tmp_path, capsys):
    storage = open_storage(storage_url)
    for sampler_name, sampler_class in (("random", optuna.samplers.RandomSampler),
                                        ("tpe", optuna.samplers.TPESampler)):
        for seed in (0, 1):
            study = optuna.create_study(storage=storage, study_name=f"cmp/{sampler_name}/seed{seed}",
                                        sampler=sampler_class(seed=seed))
            for key, value in {"comparison": "cmp", "sampler": sampler_name, "seed": seed}.items():
                study.set_user_attr(key, value)
            study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 0.5) ** 2, n_trials=5)
    _pruned_study(storage, "cmpx-unrelated")

    assert [s.study_name for s in find_studies(storage, "cmp")] == [
        "cmp/random/seed0", "cmp/random/seed1", "cmp/tpe/seed0", "cmp/tpe/seed1"]
    assert main(["report", "cmp", "--storage", storage_url, "--out", str(tmp_path / "cmp")]) == 0
    page = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert 'id="comparison-figure"' in page and "Winner by best value" in page
    for name in ("cmp-random-seed0", "cmp-tpe-seed1"):
        for key, _ in FIGURES[:4]:
            assert f'id="{name}-{key}"' in page
    assert "cmpx-unrelated" not in page
    assert get_plotlyjs()[:200] not in page and (tmp_path / "cmp" / "plotly.min.js").is_file()

    capsys.readouterr()
    assert main(["report", "nope", "--storage", storage_url, "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("hpo report: error: no study or comparison named 'nope'") and "cmp/tpe/seed0" in error


@pytest.mark.slow
def test_every_sampler_of_the_project(storage_url):
    from hpo.samplers import SAMPLERS, build_sampler

    storage = open_storage(storage_url)
    studies = []
    for name in SAMPLERS:
        study = optuna.create_study(storage=storage, study_name=f"sampler-{name}",
                                    sampler=build_sampler(name, seed=0))
        study.set_user_attr("sampler", name)

        def objective(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", 1e-3, 1.0, log=True)
            k = trial.suggest_int("k", 1, 4)
            kind = trial.suggest_categorical("kind", ["a", "b"])
            return x * k + (0.5 if kind == "a" else 0.0)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CMA-ES and GP warn about the categorical parameter
            study.optimize(objective, n_trials=6)
        studies.append(study)
    page = render_report(studies, title="samplers")
    for name in SAMPLERS:
        for key, title in FIGURES:
            if key == "intermediate":
                assert f"id='sampler-{name}-intermediate-note'" in page
            else:
                assert f'id="sampler-{name}-{key}"' in page, (name, title)



def test_importances_of_a_large_study_come_from_a_bounded_sample_and_the_page_says_so(storage_url, monkeypatch):
    from hpo.browse import _report

    monkeypatch.setattr(_report, "IMPORTANCE_SAMPLE", 12)
    monkeypatch.setattr(_report, "CURVES_SHOWN", 5)
    study = optuna.create_study(storage=open_storage(storage_url), study_name="large",
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        value = trial.suggest_float("x", 0, 1) + 0.01 * trial.suggest_float("y", 0, 1)
        if trial.number % 3 == 0:
            trial.report(value, 0)
        return value

    study.optimize(objective, n_trials=30)
    study.optimize(lambda t: 1 / 0, n_trials=1, catch=(ZeroDivisionError,))  # not a completed trial
    assert [t.number for t in _report.importance_sample(study.trials[:30])] == list(range(18, 30))
    importances = next(figure for figure in _report.study_figures(study) if figure.key == "importances")
    assert importances.figure is not None
    assert importances.caption == (
        "fANOVA on the 12 most recent of 30 completed trials (a bounded sample; 16 trees of depth at most 8, seed 0)")
    curves = next(figure for figure in _report.study_figures(study) if figure.key == "intermediate")
    assert curves.caption == "the 5 most recent of 10 trials with intermediate values"
    assert len(curves.figure.data) == 5
    parallel = next(figure for figure in _report.study_figures(study) if figure.key == "parallel")
    assert parallel.caption == "the 5 most recent of 30 completed trials"
    page = _report.study_section(study)
    assert "id='large-importances-caption'" in page and "id='large-intermediate-caption'" in page
    small = optuna.create_study(storage=open_storage(storage_url), study_name="small")
    small.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    assert next(f for f in _report.study_figures(small) if f.key == "importances").caption is None
