"""`hpo report` and `hpo compare` pages as a reader sees them: opened from file:// in headless Chromium.

Real reports from the CLI (a real SQLite store, the built-in test functions), real plotly.js from the
shared file beside each page: the assertions are about what the browser lays out and renders.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pandas as pd
import pytest

from hpo.browse._report import IMPORTANCE_MIN_TRIALS
from hpo.cli import main
from hpo.compare._functions import get_function

optuna.logging.set_verbosity(optuna.logging.WARNING)

RENDERED = "() => window.Plotly !== undefined && [...document.querySelectorAll('.js-plotly-plot')]" \
           ".every(div => div.querySelector('svg.main-svg'))"
"""Every plotly graph of the page has drawn its SVG (and plotly.js was loaded at all)."""


def _open(page, path: Path) -> None:
    page.goto(path.resolve().as_uri())
    page.wait_for_function(RENDERED, timeout=20_000)


def _fits_the_viewport(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a real picture, not an empty page


@pytest.mark.slow
def test_study_report_fits_the_page_and_warns_about_few_trials(page, tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    surrogate = get_function("classifier-surrogate")  # 10 parameters: Optuna's slice plot is 3,000 px wide
    study = optuna.create_study(study_name="six", storage=url, direction=surrogate.direction,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr("direction", surrogate.direction)  # as study files record it
    study.optimize(surrogate.objective, n_trials=6)
    assert main(["report", "six", "--storage", url, "--out", str(tmp_path / "out")]) == 0
    assert any("only 6 completed trials" in r.getMessage() for r in caplog.records)  # console warning
    assert (tmp_path / "out" / "plotly.min.js").is_file()

    _open(page, tmp_path / "out" / "report.html")
    assert page.evaluate("typeof window.Plotly.newPlot") == "function"  # from the shared file
    assert page.locator(".js-plotly-plot").count() == 5  # all but the intermediate values
    assert _fits_the_viewport(page)
    slice_box = page.locator("#six-slice").bounding_box()
    assert slice_box["width"] <= page.viewport_size["width"]
    assert slice_box["height"] > 2.5 * 300  # ten panels wrapped into three rows of four
    axis_titles = page.evaluate("[...document.querySelectorAll('#six-slice text')]"
                                ".filter(t => /^x\\d*title$/.test(t.getAttribute('class'))).map(t => t.textContent)")
    assert sorted(axis_titles) == sorted({name for trial in study.trials for name in trial.params})
    # the title and the direction appear once each: no second heading, no plotly figure titles
    assert page.locator("h1").all_text_contents() == ["Study six"]
    assert page.locator("h2", has_text="six").count() == 0
    assert page.locator(".gtitle").count() == 0
    headers = page.locator("table.study-header th").all_text_contents()
    assert headers.count("direction") == 1 and "directions" not in headers
    warning = page.locator("#six-importances-warning")
    assert warning.is_visible()
    assert "only 6 completed trials" in warning.inner_text() and str(IMPORTANCE_MIN_TRIALS) in warning.inner_text()
    _screenshot(page, tmp_path / "study.png")


@pytest.mark.slow
def test_compare_report_ranks_names_the_winner_and_fits(page, tmp_path):
    folder = tmp_path  # three samplers on the sphere, 2 seeds x 30 trials, target 3, in memory (the default)
    assert main(["compare", "--function", "sphere", "--samplers", "tpe,ga,random", "--seeds", "2",
                 "--n-trials", "30", "--target", "3", "--sampler-option", "ga.population_size=6",
                 "--name", "sph", "--out", str(folder / "out")]) == 0
    summary = pd.read_csv(folder / "out" / "summary.csv").set_index("sampler")
    winner = summary["best_mean"].idxmin()
    never = sorted(summary.index[summary["reached_target"] == 0])
    assert never and len(never) < len(summary)  # the seeds make some samplers reach 3, others not

    _open(page, folder / "out" / "report.html")
    assert _fits_the_viewport(page)
    assert page.locator("#verdict").inner_text().startswith(f"Winner by best value: {winner} ")
    rows = page.locator("#ranking tbody tr")
    assert rows.count() == 3
    first = rows.nth(0).locator("td").all_text_contents()
    assert first[:2] == ["1", winner]
    by_sampler = {cells[1]: cells for cells in (rows.nth(i).locator("td").all_text_contents() for i in range(3))}
    assert "population_size" in by_sampler["ga"][-1] and by_sampler["tpe"][-1] == "defaults"
    for sampler in never:
        assert any(cell.startswith("not reached (mean best ") for cell in by_sampler[sampler])
    # the figure marks them too, and leaves out the pruned panel the test function cannot fill
    marks = page.locator("#comparison-figure .textpoint").all_text_contents()
    assert any(mark.startswith("not reached") for mark in marks)
    panel_titles = page.locator("#comparison-figure .annotation-text").all_text_contents()
    assert any(title.startswith("trials needed to reach the target") for title in panel_titles)
    assert not any("pruned" in title for title in panel_titles)
    assert page.get_by_text("No pruned-fraction panel").is_visible()
    # the wide summary table scrolls inside its box instead of widening the page
    assert page.evaluate("(() => { const box = document.querySelector('#summary .scroll');"
                         " return box.scrollWidth > box.clientWidth; })()")
    _screenshot(page, tmp_path / "compare.png")


@pytest.mark.slow
def test_group_report_of_a_stored_comparison(page, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert main(["compare", "--function", "sphere", "--samplers", "tpe,random", "--seeds", "1", "--n-trials", "8",
                 "--target", "3", "--storage", url, "--name", "sph", "--out", str(tmp_path / "out")]) == 0
    assert main(["report", "sph", "--storage", url, "--out", str(tmp_path / "group")]) == 0
    _open(page, tmp_path / "group" / "report.html")
    assert _fits_the_viewport(page)
    assert page.locator("h1").all_text_contents() == ["Comparison sph"]
    assert page.locator("#verdict").inner_text().startswith("Winner by best value: ")
    assert "target 3" in page.locator("#comparison-figure .gtitle").text_content()  # recorded with the studies
    assert page.locator("body > details").count() == 2  # one folded section per study
    page.locator("details summary").first.click()
    slice_box = page.locator("details[open] [id$='-slice']").bounding_box()
    assert 0 < slice_box["width"] <= page.viewport_size["width"]
    _screenshot(page, tmp_path / "group.png")
