"""`hpo latent`: every sample and every tissue of the given data set is in the picture."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from data_pipeline import SPLITS
from hpo.browse import write_latent_plots
from hpo.browse._latent import latent_figure, latent_points, project
from hpo.cli import main
from hpo.results import write_config
from models import build_model

SMALL = {"hidden_dim": 32, "latent_dim": 8, "max_epochs": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def autoencoder(tiny_dataset):
    return build_model("autoencoder", SMALL, device="cpu", seed=0).fit(tiny_dataset)


def _all_ids(data) -> list[str]:
    return [sample for split in SPLITS for sample in data.sample_ids[split]]


def _check_figure(figure, data) -> None:
    """One point per sample, each tissue coloured once, symbols per split, hover metadata per point."""
    ids, tissues, symbols = [], set(), {}
    colours: dict[str, set[str]] = {}
    for trace in figure.data:
        rows = np.asarray(trace.customdata, dtype=object)
        assert len(rows) == len(trace.x) == len(trace.y)
        ids += list(rows[:, 0])
        tissue, split = set(rows[:, 1]), set(rows[:, 3])
        assert len(tissue) == 1 and len(split) == 1
        tissues |= tissue
        colours.setdefault(tissue.pop(), set()).add(trace.marker.color)
        symbols.setdefault(split.pop(), set()).add(trace.marker.symbol)
    assert sorted(ids) == sorted(_all_ids(data))  # every sample exactly once
    assert tissues == set(data.tissues)  # every tissue
    assert all(len(c) == 1 for c in colours.values()) and len({c.pop() for c in colours.values()}) == len(tissues)
    assert set(symbols) == set(SPLITS) and len({s.pop() for s in symbols.values()}) == 3


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
    assert (tmp_path / "clf" / "model" / "model" / "model.json").is_file()

    capsys.readouterr()
    assert main(["latent", "--model-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "no trained model here" in capsys.readouterr().err
