"""optuna-dashboard in a headless browser, on a small classifier study run by the real worker code.

What a user of the dashboard sees: the metric's name (not "Objective 0"), a study note with the
headline, the description, the overrides that ran and the effective study file, the learning curves
of every metric and the best trial's confusion matrix as interactive plotly figures on the study page,
a summary and a per-epoch chart on each trial page, trial pages no wider than the window, and no user
attribute named like a parameter.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from hpo.run import run_worker
from hpo.storage import open_storage
from hpo.study import load_study_file
from tests.browse.test_dashboard import _get_json, _running_dashboard, _study_id
from tests.run.test_workers import tiny_study

DESCRIPTION = "Tiny classifier study the browser test reads"
OVERRIDES = {"n_trials": 3, "fixed.max_epochs": 3}
FIGURE = "[id='user-defined-plot:learning-curves']"
VIEWPORT_WIDTH = 1280  # the `page` fixture's
WIDE = """() => [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > innerWidth)
    .map(e => `${e.tagName} ${Math.round(e.getBoundingClientRect().width)} ${e.textContent.slice(0, 60)}`).slice(0, 40)"""


@pytest.fixture
def browsed_study(tmp_path, monkeypatch, tiny_dataset, tiny_data_config):
    """3 finished trials of a classifier study (random sampler, 3 epochs) and a dashboard on them."""
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "runs"))
    path = tiny_study(tmp_path, tiny_data_config, name="browsed", description=DESCRIPTION)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    spec = load_study_file(path, OVERRIDES)
    run_worker(spec, storage_url=url, worker_index=0, num_threads=1)
    study = optuna.load_study(study_name="browsed", storage=open_storage(url, heartbeat_interval=None))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3
    with _running_dashboard(url, tmp_path / "runs") as base:
        yield base, study


def _box_lines(page, label: str) -> list[str]:
    """The lines of the value box beside ``label`` on a trial page ("Parameter", "User Attributes")."""
    box = page.get_by_text(label, exact=True).locator("xpath=following-sibling::div[1]")
    return [line.strip() for line in box.inner_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_dashboard_pages_read_well(browsed_study, page, tmp_path, tiny_dataset):
    base, study = browsed_study
    study_id = _study_id(base, "browsed")
    best = study.best_trial

    # study page: the metric's name, and the learning curves of every metric as a plotly figure
    page.goto(f"{base}/dashboard/studies/{study_id}", wait_until="networkidle")
    page.wait_for_selector(f"{FIGURE} svg.main-svg")
    body = page.locator("body").inner_text()
    assert "Objective 0" not in body and "val_balanced_accuracy" in body
    legend = page.locator(f"{FIGURE} .legendtext").all_text_contents()
    assert sorted(legend) == sorted(f"#{t.number}: {t.value:.4f}" for t in study.trials)
    menu = page.evaluate(f"document.querySelector(\"{FIGURE}\").layout.updatemenus[0].buttons.map(b => b.label)")
    assert menu[0] == "val_balanced_accuracy"
    assert {"val_loss", "val_accuracy", "val_macro_f1", "train_loss", "lr"} <= set(menu)
    assert page.locator(f"{FIGURE} .ytitle").text_content() == "val_balanced_accuracy"
    page.locator(f"{FIGURE} .updatemenu-header-group").click()
    page.locator(f"{FIGURE} .updatemenu-dropdown-button").filter(has_text="val_loss").first.click()
    page.wait_for_function(f"document.querySelector(\"{FIGURE} .ytitle\").textContent === 'val_loss'")
    confusion = page.locator("[id='user-defined-plot:confusion-matrix']")
    assert confusion.locator(".gtitle").text_content().startswith(f"Confusion matrix: best trial {best.number} ")
    assert set(confusion.locator(".ytick text").all_text_contents()) == set(tiny_dataset.tissues)
    shot = tmp_path / "study.png"
    page.locator(FIGURE).screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a drawn chart, not an empty box

    # study note: the headline, then the description, the overrides that ran and the effective study file
    page.goto(f"{base}/dashboard/studies/{study_id}/note", wait_until="networkidle")
    note = page.get_by_text("Effective study file").locator("xpath=ancestor::div[1]").inner_text()
    assert note.startswith(f"Winner: trial {best.number}, val_balanced_accuracy {best.value:.4f}")
    assert DESCRIPTION in note and note.index(DESCRIPTION) > note.index("hpo export browsed")
    assert "--set fixed.max_epochs=3" in note and "--set n_trials=3" in note
    assert "max_epochs = 3" in note and "n_trials = 3" in note  # the file said 4 and 4

    # trial page: the trial's summary and its chart of every epoch (the CSV a click away), no wider than the
    # window, no attribute named like a parameter
    page.goto(f"{base}/dashboard/studies/{study_id}/trials?numbers={best.number}", wait_until="networkidle")
    page.get_by_text("Every epoch, every metric:").wait_for()
    assert page.get_by_role("link", name="learning_curves.csv").count() == 1
    assert page.locator("img[src^='/artifacts/']").first.evaluate("img => img.complete && img.naturalWidth > 0")
    params = {line.split()[0] for line in _box_lines(page, "Parameter")}
    attrs = {line.split()[0] for line in _box_lines(page, "User Attributes")}
    assert params == set(best.params) == {"lr", "dropout"}
    assert not attrs & params, f"user attributes named like parameters: {attrs & params}"
    assert "final_lr" in attrs and "model_params" not in attrs
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT_WIDTH, page.evaluate(WIDE)
    shot = tmp_path / "trial.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    detail = _get_json(f"{base}/api/studies/{study_id}")  # the same through the API the page reads
    assert detail["objective_names"] == ["val_balanced_accuracy"]
