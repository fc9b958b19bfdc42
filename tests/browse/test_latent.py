"""`hpo latent`: every sample and every tissue of the given data set is in the picture."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from data_pipeline import SPLITS
from hpo.browse import write_latent_plots
from hpo.browse._latent import MISCLASSIFIED, SPLIT_SYMBOLS, _palette, latent_figure, latent_points, project, write_png
from hpo.cli import main
from hpo.results import write_config
from models import build_model

SMALL = {"hidden_dim": 32, "latent_dim": 8, "max_epochs": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def autoencoder(tiny_dataset):
    return build_model("autoencoder", SMALL, device="cpu", seed=0).fit(tiny_dataset)


def _all_ids(data) -> list[str]:
    return [sample for split in SPLITS for sample in data.sample_ids[split]]


def _check_figure(figure, data, points=None) -> None:
    """One point per sample; one trace, one legend entry and one colour per tissue; the split as the marker (its key
    in the legend); a classifier's misclassified samples ringed by a trace of their own."""
    ids, colours = [], {}
    tissue_traces = [t for t in figure.data if t.legendgroup not in ("split", MISCLASSIFIED)]
    for trace in tissue_traces:
        rows = np.asarray(trace.customdata, dtype=object)
        assert len(rows) == len(trace.x) == len(trace.y) == len(trace.marker.symbol)
        ids += list(rows[:, 0])
        (tissue,) = set(rows[:, 1])
        assert trace.name == tissue and tissue not in colours
        colours[tissue] = trace.marker.color
        assert [SPLIT_SYMBOLS[split] for split in rows[:, 3]] == list(trace.marker.symbol)
    assert sorted(ids) == sorted(_all_ids(data))  # every sample exactly once
    assert set(colours) == set(data.tissues) and len(set(colours.values())) == len(colours)  # a colour each
    keys = [t for t in figure.data if t.legendgroup == "split"]
    assert [t.marker.symbol for t in keys] == [SPLIT_SYMBOLS[s] for s in SPLITS] and all(t.x == (None,) for t in keys)
    ringed = [t for t in figure.data if t.legendgroup == MISCLASSIFIED]
    if points is None or "predicted" not in points.columns:
        assert not ringed
        return
    (ringed,) = ringed
    wrong = points[points["predicted"] != points["tissue"]]
    assert sorted(np.asarray(ringed.customdata, dtype=object)[:, 0]) == sorted(wrong["sample_id"])
    assert ringed.name == f"{MISCLASSIFIED} ({len(wrong)})" and ringed.marker.symbol == "circle-open"


def _lab(colour: str) -> np.ndarray:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    rgb = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_forty_tissues_get_forty_colours_that_stay_apart():
    colours = _palette(40)
    lab = [_lab(c) for c in colours]
    closest = min(np.linalg.norm(lab[i] - lab[j]) for i in range(40) for j in range(i))
    assert len(set(colours)) == 40 and closest > 25  # CIE76: about 2 is "just noticeable"; Dark24+Light24 had 2.4
    assert all(20 < lab_[0] < 90 for lab_ in lab)  # none too dark to tell apart, none too light on white


def test_a_png_comes_beside_each_page_or_the_way_to_get_one(tmp_path, caplog, monkeypatch):
    import importlib.util
    import logging

    figure = latent_figure(np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]), pd.DataFrame({
        "sample_id": ["a", "b", "c"], "tissue": ["Lung", "Skin", "Lung"], "disease": "x", "split": "train"}), title="t")
    if importlib.util.find_spec("kaleido") is not None:  # pyproject installs it; it drives the machine's Chromium
        path = write_png(figure, tmp_path / "p.png")
        if path is not None:
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kaleido" else real(name, *a))
    with caplog.at_level(logging.WARNING, logger="hpo.browse"):
        assert write_png(figure, tmp_path / "q.png") is None
    assert "no PNG for q.png: pip install kaleido" in caplog.text and "apt-get install chromium" in caplog.text


def test_autoencoder_latent_space_holds_every_sample_and_tissue(autoencoder, tiny_dataset, tmp_path):
    embeddings, points = latent_points(autoencoder, tiny_dataset)
    assert embeddings.shape == (len(_all_ids(tiny_dataset)), 8)
    assert "predicted" not in points.columns
    train_ids = tiny_dataset.sample_ids["train"]
    first = points.set_index("sample_id").loc[train_ids[0]]
    assert first["disease"] == tiny_dataset.sample_info["train"]["OncotreePrimaryDisease"][0]
    assert first["tissue"] == tiny_dataset.tissues[int(tiny_dataset.y_train[0])]

    written = write_latent_plots(autoencoder, tiny_dataset, tmp_path, methods=("pca", "tsne"), png=False)
    assert [p.name for p in written] == ["latent_pca.html", "latent_tsne.html", "latent_points.csv"]
    table = pd.read_csv(tmp_path / "latent_points.csv")
    assert sorted(table["sample_id"]) == sorted(_all_ids(tiny_dataset))
    assert table[["pca_1", "pca_2", "tsne_1", "tsne_2"]].notna().all().all()
    page = (tmp_path / "latent_tsne.html").read_text(encoding="utf-8")
    # offline and small: both pages load the one plotly.min.js written beside them (the default, 'shared')
    assert re.findall(r"<script[^>]+src='([^']+)'", page) == ["plotly.min.js"]
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000 > len(page)
    assert all(sample in page for sample in _all_ids(tiny_dataset))

    coords = table[["pca_1", "pca_2"]].to_numpy()
    _check_figure(latent_figure(coords, points, title="t", tissues=tiny_dataset.tissues), tiny_dataset)
    predicted = points.assign(predicted=points["tissue"])  # as a classifier's points: a few called wrongly
    predicted.loc[predicted.index[::17], "predicted"] = tiny_dataset.tissues[0]
    assert (predicted["predicted"] != predicted["tissue"]).sum() > 0
    _check_figure(latent_figure(coords, predicted, title="t", tissues=tiny_dataset.tissues), tiny_dataset, predicted)


def test_pca_is_fitted_on_the_training_rows():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(50, 4)) * np.array([5.0, 1.0, 0.1, 0.1])
    held_out = rng.normal(size=(20, 4)) * np.array([0.1, 0.1, 50.0, 0.1])  # huge variance off the train axes
    both = np.vstack([train, held_out])
    mask = np.arange(70) < 50
    coords = project(both, "pca", fit_rows=mask)
    assert np.std(coords[:50, 0]) > 3 * np.std(coords[:50, 1])  # first axis = train's widest direction
    assert np.std(coords[50:, 0]) < 1  # the held-out variance did not steer the axes
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((5, 3), np.nan), "pca")
    with pytest.raises(ValueError, match="unknown projection"):
        project(both, "mds")


def test_cli_from_train_output_and_from_exported_classifier(tiny_data_config, tiny_dataset, tmp_path, capsys):
    cache = tiny_data_config.cache_dir
    assert main(["train", "--model", "autoencoder", "--preset", "tiny", "--cache-dir", cache,
                 "--set", "hidden_dim=32", "--set", "latent_dim=8", "--set", "max_epochs=2",
                 "--out", str(tmp_path / "ae")]) == 0
    assert main(["latent", "--model-dir", str(tmp_path / "ae"), "--out", str(tmp_path / "ae-plots"),
                 "--method", "pca"]) == 0
    table = pd.read_csv(tmp_path / "ae-plots" / "latent_points.csv")
    assert sorted(table["sample_id"]) == sorted(_all_ids(tiny_dataset))
    assert set(table["tissue"]) == set(tiny_dataset.tissues)

    config = {
        "model": "classifier",
        "params": {"hidden_dim": 32, "latent_dim": 8, "max_epochs": 2},
        "data": {"source": "synthetic", "preset": "tiny"},
        "source": {"data_fingerprint": tiny_dataset.fingerprint},
    }
    path = write_config(config, tmp_path / "best.toml")
    assert main(["latent", "--config", str(path), "--cache-dir", cache, "--out", str(tmp_path / "clf"),
                 "--method", "pca", "--no-png", "--plotly-js", "inline"]) == 0
    inline = (tmp_path / "clf" / "latent_pca.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", inline) and len(inline) > 1_000_000  # one self-contained file
    assert not (tmp_path / "clf" / "plotly.min.js").exists()
    assert (tmp_path / "ae-plots" / "plotly.min.js").is_file()  # the default: shared
    table = pd.read_csv(tmp_path / "clf" / "latent_points.csv")
    assert sorted(table["sample_id"]) == sorted(_all_ids(tiny_dataset))
    assert set(table["predicted"]) <= set(tiny_dataset.tissues)  # a classifier's hover shows its prediction
    assert f"{MISCLASSIFIED} (" in inline  # and rings the samples it got wrong
    assert (tmp_path / "clf" / "model" / "model" / "model.json").is_file()

    capsys.readouterr()
    assert main(["latent", "--model-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "no trained model here" in capsys.readouterr().err
