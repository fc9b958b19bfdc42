"""The data summary: its statistics are the data's, not decorations."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from data_pipeline import PreparedDataset
from data_pipeline.loader import load_labelled
from data_pipeline.prepare import load_summary
from data_pipeline.summary import format_summary, summary_figures, tissue_table, write_report


def test_summary_statistics_match_the_input_files(tiny_dataset: PreparedDataset) -> None:
    summary = load_summary(tiny_dataset)
    data = load_labelled(tiny_dataset.provenance["expression_file"], tiny_dataset.provenance["model_file"],
                         "OncotreeLineage")
    assert summary["sparsity"] == np.float64((data.values == 0).mean())
    assert summary["n_genes_input"] == data.values.shape[1] == 400
    assert summary["n_genes_kept"] == tiny_dataset.n_features
    assert summary["n_unlabeled_dropped"] == 4 and summary["n_labelled"] == 180
    zero_fraction = np.load(Path(tiny_dataset.directory) / "gene_zero_fraction.npy")
    np.testing.assert_allclose(zero_fraction, (data.values == 0).mean(axis=0), rtol=1e-6)

    jaccard = summary["jaccard"]
    matrix = np.array(jaccard["matrix"])
    assert matrix.shape == (40, 40)
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    a, b = (data.gene_names.index(g) for g in jaccard["genes"][:2])
    present_a, present_b = data.values[:, a] > 0, data.values[:, b] > 0
    expected = (present_a & present_b).sum() / (present_a | present_b).sum()
    assert matrix[0, 1] == round(expected, 4)


def test_tissue_table_and_text(tiny_dataset: PreparedDataset) -> None:
    rows = tissue_table(tiny_dataset)
    assert rows[0][0] == "Lung" and rows[0][1] == 41
    assert all(total == train + val + test for _, total, train, val, test in rows)
    assert sum(row[1] for row in rows) == 180
    text = format_summary(tiny_dataset)
    assert "splits                  train 126 / val 27 / test 27" in text


def test_report_figures(tiny_dataset: PreparedDataset, tmp_path: Path) -> None:
    tissues, ages, diseases, sparsity, jaccard = summary_figures(tiny_dataset)
    assert sum(tissues.data[0].y) == 180
    all_ages = [a for split in tiny_dataset.sample_info.values() for a in split["Age"] if a is not None]
    assert len(ages.data[0].x) == len(all_ages) > 150
    assert len(sparsity.data[0].x) == 400
    assert np.array(jaccard.data[0].z).shape == (40, 40)
    path = write_report(tiny_dataset, tmp_path / "nested" / "report.html")
    embedded = path.read_text()
    assert embedded.count("Plotly.newPlot") == 5
    assert len(embedded) > 1_000_000 and not re.search(r"<script[^>]+src=", embedded)  # default: self-contained
    tag = "<script src='elsewhere/plotly.js'></script>"
    loaded = write_report(tiny_dataset, tmp_path / "loaded.html", plotly_js_tag=tag).read_text()
    assert loaded.count("Plotly.newPlot") == 5 and len(loaded) < 1_000_000  # the caller's tag loads plotly.js
    assert loaded.index(tag) < loaded.index("</head>")
