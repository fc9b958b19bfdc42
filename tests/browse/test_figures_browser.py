"""`hpo latent` and `hpo data summary` pages as a reader sees them: opened from file:// in headless Chromium.

Real pages from a real (tiny) model and data set, real plotly.js from the shared ``plotly.min.js`` beside
them (the default): the assertions are about what the browser loads, lays out and renders.
"""

from __future__ import annotations

import pytest

from hpo.browse import write_latent_plots
from hpo.cli import main
from models import build_model
from tests.browse.test_report_browser import _fits_the_viewport, _open, _screenshot


@pytest.mark.slow
def test_latent_picture_renders_from_the_shared_plotly_js(page, tiny_dataset, tmp_path):
    model = build_model("autoencoder", {"hidden_dim": 16, "latent_dim": 4, "max_epochs": 1}, device="cpu", seed=0)
    written = write_latent_plots(model.fit(tiny_dataset), tiny_dataset, tmp_path, methods=("pca",), png=False)
    html = written[0]
    assert (tmp_path / "plotly.min.js").is_file() and html.stat().st_size < 1_000_000

    _open(page, html)  # waits until window.Plotly exists and the graph drew its svg.main-svg
    assert page.locator(".js-plotly-plot").count() == 1  # one legend entry per tissue, and the marker key
    assert _fits_the_viewport(page)
    legend = [t for t in page.locator(".legend .legendtext").all_text_contents() if t != "split (marker)"]
    assert sorted(t for t in legend if not t.startswith(("train", "val", "test"))) == sorted(tiny_dataset.tissues)
    assert [t for t in legend if t.startswith(("train", "val", "test"))] == ["train (circle)", "val (diamond)", "test (x)"]
    assert "by PCA" in page.locator(".gtitle").text_content()
    _screenshot(page, tmp_path / "latent.png")


@pytest.mark.slow
def test_data_summary_renders_from_the_shared_plotly_js(page, tiny_data_config, tmp_path, capsys):
    report = tmp_path / "summary" / "data-summary.html"
    assert main(["data", "summary", "--preset", "tiny", "--cache-dir", tiny_data_config.cache_dir,
                 "--out", str(report)]) == 0
    assert (report.parent / "plotly.min.js").is_file() and report.stat().st_size < 1_000_000

    _open(page, report)
    assert page.evaluate("typeof window.Plotly.newPlot") == "function"  # from the shared file
    assert page.locator(".js-plotly-plot").count() == 5  # tissues, age, disease, sparsity, Jaccard
    assert page.locator(".js-plotly-plot .heatmaplayer, .js-plotly-plot image").count() >= 1  # the heat map drew
    assert _fits_the_viewport(page)
    _screenshot(page, tmp_path / "summary.png")
