"""Answer first, in headless Chromium at 1280x800: the study note, a trial page and the report lead with who won,
by how much, and how to reproduce it; no page scrolls sideways; no console errors.

One classifier study run by the real worker code on tiny data (a reference trial, a trial bad enough to be
pruned, a final model retrained and recorded), a 5-fold logistic-regression study beside it, served by
``hpo dashboard`` and written out by ``hpo report``.
"""

from __future__ import annotations

import contextlib
import re
import shutil

import optuna
import pytest
import tomli_w
from optuna.trial import TrialState

from hpo.cli import main
from hpo.results import compute_headline, export_trial, record_final_model, retrain
from hpo.run import run_worker
from hpo.storage import open_storage
from hpo.study import load_study_file
from tests.browse.test_dashboard import _running_dashboard, _study_id
from tests.browse.test_report_browser import RENDERED
from tests.conftest import VIEWPORT
from tests.run.test_workers import tiny_study


@pytest.fixture(scope="module")
def studies(tmp_path_factory, tiny_data_config):
    """``(storage URL, run directory, classifier study, logistic-regression study)``, finished."""
    folder = tmp_path_factory.mktemp("headline")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPO_HOME", str(folder / "runs"))
        url = f"sqlite:///{folder / 'optuna.db'}"
        storage = open_storage(url, heartbeat_interval=None)
        path = tiny_study(folder, tiny_data_config, name="answer", n_trials=5,
                          fixed={"max_epochs": 8, "hidden_dim": 32, "latent_dim": 16, "batch_size": 32},
                          pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 2})
        study = optuna.create_study(study_name="answer", storage=storage, direction="maximize")
        study.enqueue_trial({"lr": 3e-3, "dropout": 0.3}, user_attrs={"reference": True})  # the defaults (issue 19)
        study.enqueue_trial({"lr": 1e-2, "dropout": 0.1})  # tuned: beats them
        study.enqueue_trial({"lr": 1e-3, "dropout": 0.4})  # learns slowest: pruned against the two before it
        run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
        study = optuna.load_study(study_name="answer", storage=storage)
        config = export_trial(study, storage_url=url)
        final = retrain(config, folder / "final", eval_splits=("test",), num_threads=1)
        assert record_final_model(config, final, study=study) == "recorded in study 'answer'"

        folds = folder / "folds.toml"
        folds.write_text(tomli_w.dumps({
            "name": "folds", "model": "logistic_regression", "metric": "val_balanced_accuracy", "direction": "maximize",
            "n_trials": 2, "device": "cpu", "data": {"preset": "tiny", "cache_dir": str(tiny_data_config.cache_dir)},
            "fixed": {"fidelity": "folds", "fidelity_steps": 5, "max_iter": 20},
            "space": {"C": {"type": "float", "low": 0.05, "high": 5.0, "log": True}},
            "sampler": {"name": "random", "seed": 0},
        }))
        run_worker(load_study_file(folds), storage_url=url, worker_index=0, num_threads=1)
        yield url, folder / "runs", optuna.load_study(study_name="answer", storage=storage), \
            optuna.load_study(study_name="folds", storage=storage)


@contextlib.contextmanager
def _console_errors(page):
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield errors


def _first_screen(page, text: str) -> bool:
    """Whether ``text`` is on the page, laid out within the first 800 pixels (no scrolling)."""
    box = page.get_by_text(text, exact=False).first.bounding_box()
    return box is not None and box["y"] + box["height"] <= VIEWPORT["height"]


WIDE = """() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth
    && [...e.children].every(c => c.getBoundingClientRect().right <= innerWidth))
    .map(e => `${e.tagName}: ${e.textContent.slice(0, 80)}`).slice(0, 5)"""


def _no_sideways_scroll(page) -> bool:
    """No horizontal scrolling (else the assertion names the widest elements)."""
    page.wait_for_timeout(300)  # late layout: pictures, plotly's resize
    wide = page.evaluate("document.documentElement.scrollWidth") > VIEWPORT["width"]
    assert not wide, page.evaluate(WIDE)
    return True


def _open_note(page, base: str, path: str, wait_for: str) -> None:
    page.goto(f"{base}{path}", wait_until="networkidle")
    page.get_by_text(wait_for, exact=False).first.wait_for(timeout=20_000)


@pytest.mark.slow
def test_the_study_note_and_trial_pages_answer_first(studies, page):
    url, runs, study, folds = studies
    head = compute_headline(study)
    assert head.reference is not None and head.runner_up is not None and head.final is not None
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the slow configuration was not pruned"
    winner = f"Winner: trial {head.winner.number}, val_balanced_accuracy {head.winner.value:.4f}"
    with _running_dashboard(url, runs) as base, _console_errors(page) as errors:
        study_id = _study_id(base, "answer")
        # the study page first (the pages after it are reached as a reader does, inside the app):
        # pruned curves in the learning-curve figure
        page.goto(f"{base}/dashboard/studies/{study_id}", wait_until="networkidle")
        figure = "[id='user-defined-plot:learning-curves']"
        page.wait_for_selector(f"{figure} svg.main-svg")
        legend = page.locator(f"{figure} .legendtext").all_text_contents()
        assert any(entry.endswith("(pruned)") for entry in legend) and any("(pruned)" not in e for e in legend)
        assert _no_sideways_scroll(page)

        # the study note: the headline on the first screen
        _open_note(page, base, f"/dashboard/studies/{study_id}/note", winner)
        for text in (winner, "over the reference (trial 0, the defaults: ", "over the runner-up (trial ",
                     "Test: test_accuracy ", "hpo export answer", f"--storage {url}"):
            assert _first_screen(page, text), text
        assert _no_sideways_scroll(page)

        # the winner's page leads with the same headline; its value is above the fold
        _open_note(page, base, f"/dashboard/studies/{study_id}/trials?numbers={head.winner.number}", winner)
        for text in (winner, "over the reference (trial 0", "over the runner-up", "hpo export answer",
                     f"Trial {head.winner.number}: complete, val_balanced_accuracy {head.winner.value:.4f}, rank 1"):
            assert _first_screen(page, text), text
        assert page.locator("img[src^='/artifacts/']").first.evaluate("img => img.naturalWidth") > 0  # the curve
        assert _no_sideways_scroll(page)

        # any other trial: its value and rank first, then the winner and the command that exports it
        other = head.runner_up.number
        _open_note(page, base, f"/dashboard/studies/{study_id}/trials?numbers={other}", f"Trial {other}: complete")
        for text in (f"Trial {other}: complete, val_balanced_accuracy {head.runner_up.value:.4f}, rank 2",
                     "Winner then: trial ", f"--trial {other} --out trial{other}.toml"):
            assert _first_screen(page, text), text
        assert _no_sideways_scroll(page)

        # a pruned trial: why, with the median it lost to; the display rounds, the page does not widen
        _open_note(page, base, f"/dashboard/studies/{study_id}/trials?numbers={pruned[0].number}", "Why pruned")
        assert _first_screen(page, f"Trial {pruned[0].number}: pruned at step ")
        reason = page.get_by_text("Why pruned: pruned by MedianPruner at step ").first.inner_text()
        assert re.search(r"best val_balanced_accuracy so far [\d.]+ < median [\d.]+ of \d complete trials? at step \d",
                         reason)
        assert _no_sideways_scroll(page)

        # a 5-fold study's trial: the fold scores in the note, rounded; no unbreakable line of floats
        folds_id = _study_id(base, "folds")
        _open_note(page, base, f"/dashboard/studies/{folds_id}/trials?numbers=0", "Fold scores: ")
        scores = page.get_by_text("Fold scores: ").first.inner_text()
        assert len(scores.split(":", 1)[1].split("(")[0].split(",")) == 5 and not re.search(r"\d{6}", scores)
        assert _no_sideways_scroll(page)
    assert not errors, errors


@pytest.mark.slow
def test_the_report_answers_on_its_first_screen(studies, page, tmp_path):
    url, _, study, _ = studies
    head = compute_headline(study)
    out = tmp_path / "report"
    assert main(["report", "answer", "--storage", url, "--out", str(out)]) == 0
    with _console_errors(page) as errors:
        page.goto((out / "report.html").as_uri())
        page.wait_for_function(RENDERED, timeout=20_000)
        assert page.locator("#plotly-missing").count() == 0  # plotly.js loaded: the hint is gone
        headline = page.locator("#answer-headline")
        box = headline.bounding_box()
        assert box["y"] + box["height"] <= VIEWPORT["height"]  # the whole headline on the first screen
        text = headline.inner_text()
        assert f"Winner: trial {head.winner.number}, val_balanced_accuracy {head.winner.value:.4f}" in text
        assert "over the reference (trial 0, the defaults: " in text and "over the runner-up (trial " in text
        assert "Test: test_accuracy " in text and "hpo export answer --storage " in text
        assert "hpo train --config best.toml" in text
        assert _no_sideways_scroll(page)

        # learning curves: the pruned trials dashed, ending in an x
        traces = page.evaluate("document.getElementById('answer-curves').data")
        dashed = [t for t in traces if t["line"]["dash"] == "dash"]
        assert dashed and all(t["marker"]["symbol"][-1] == "x" for t in dashed)
        # the confusion matrix at full width, every tissue named, coloured by share; the confusions as text
        confusion = page.locator("#answer-confusion").bounding_box()
        content = page.evaluate("document.body.clientWidth")
        assert confusion["width"] >= 0.9 * (content - 2 * 24)
        heatmap = page.evaluate("document.getElementById('answer-confusion').data[0]")
        assert heatmap["zmax"] == 1 and len(page.locator("#answer-confusion .ytick").all()) == len(heatmap["y"])
        assert page.locator("#answer-confusions li").count() <= 10
        assert page.locator("#answer-importances-warning").is_visible()
        assert page.locator("#answer-test table").is_visible() and "test_balanced_accuracy" in page.locator(
            "#answer-test").inner_text()
        assert "--study-name answer" in page.locator("#answer-commands").inner_text()
        # the metadata at the end, folded
        metadata = page.locator("#answer-metadata")
        assert metadata.evaluate("d => !d.open && d === document.body.lastElementChild.lastElementChild || !d.open")
        assert page.evaluate("[...document.querySelectorAll('h3, details')].pop().id") == "answer-metadata"
    assert not errors, errors

    # a report copied without its plotly.min.js says so, visibly, instead of empty headings
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(out / "report.html", alone / "report.html")
    page.goto((alone / "report.html").as_uri())
    missing = page.locator("#plotly-missing")
    assert missing.is_visible() and "plotly.min.js missing" in missing.inner_text()
    assert "--plotly-js inline" in missing.inner_text()
