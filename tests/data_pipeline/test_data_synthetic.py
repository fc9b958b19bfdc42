"""The synthetic DepMap-like generator: determinism, layouts, DepMap-like structure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from data_pipeline import DataError
from data_pipeline.synthetic import (
    SYNTHETIC_PRESETS,
    TISSUES,
    generate_files,
    generate_tables,
    spec_for,
    tissue_counts,
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("layout", ["classic", "25q3"])
def test_same_seed_gives_byte_identical_files(tmp_path: Path, layout: str) -> None:
    spec = spec_for("tiny", seed=11, layout=layout)
    first = generate_files(spec, tmp_path / "a")
    second = generate_files(spec, tmp_path / "b")
    other = generate_files(spec_for("tiny", seed=12, layout=layout), tmp_path / "c")
    for a, b, c in zip(first, second, other):
        assert a.name == b.name
        assert _digest(a) == _digest(b)
        assert _digest(a) != _digest(c)


def test_file_names_follow_the_release(tmp_path: Path) -> None:
    classic = generate_files(spec_for("tiny"), tmp_path / "classic")
    q3 = generate_files(spec_for("tiny", layout="25q3"), tmp_path / "q3")
    assert [p.name for p in classic] == ["OmicsExpressionProteinCodingGenesTPMLogp1.csv", "Model.csv"]
    assert [p.name for p in q3] == ["OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv", "Model.csv"]
    model_header = classic[1].read_text().splitlines()[0].split(",")
    for column in ("ModelID", "OncotreeLineage", "OncotreePrimaryDisease", "OncotreeSubtype", "Age", "Sex"):
        assert column in model_header


def test_25q3_layout_has_several_profiles_per_model_and_one_default() -> None:
    frame = generate_tables(spec_for("small", layout="25q3", n_genes=50)).expression
    per_model = frame.groupby("ModelID")["IsDefaultEntryForModel"].agg(lambda flags: (flags == "Yes").sum())
    assert (per_model == 1).all()
    assert frame["ModelID"].duplicated().any()


def test_full_preset_tissue_imbalance_is_depmap_like() -> None:
    counts = tissue_counts(SYNTHETIC_PRESETS["full"])
    assert counts.sum() == 1402 and counts.size == 39
    assert (counts >= 100).sum() >= 3  # a few tissues with hundreds of samples
    assert 3 <= (counts < 10).sum() <= 10  # several with fewer than 10
    assert len(set(TISSUES)) == 39


def test_values_look_like_log_tpm_with_depmap_sparsity() -> None:
    tables = generate_tables(spec_for("small"))
    values = tables.expression.iloc[:, 1:].to_numpy()
    assert values.min() == 0.0 and 8.0 < values.max() < 20.0
    zeros = (values == 0).mean()
    assert 0.12 < zeros < 0.24
    # Zeros are concentrated: a minority of genes hold most of them.
    per_gene = (values == 0).mean(axis=0)
    assert (per_gene > 0.5).mean() < 0.3
    assert values[:, per_gene > 0.5].size and (values == 0)[:, per_gene > 0.5].sum() > 0.5 * (values == 0).sum()
    # Low-variance, highly expressed housekeeping genes exist.
    variance = values.var(axis=0)
    housekeeping = (variance < 0.05) & (values.mean(axis=0) > 5.0)
    assert housekeeping.mean() > 0.04
    # Unlabelled samples for the loader to drop; Age, Sex and disease metadata.
    models = tables.models
    assert (models["OncotreeLineage"] == "").sum() == round(0.02 * 500)
    assert set(models["Sex"]) <= {"Male", "Female", "Unknown"}
    profiled = models[models["ModelID"].isin(tables.expression[""])]
    assert len(profiled) < len(models)  # like DepMap, Model.csv also lists models without a profile
    assert (profiled.loc[profiled["OncotreeLineage"] == "Breast", "Sex"] == "Female").all()
    assert profiled["Age"].replace("", np.nan).astype(float).between(1, 89).mean() > 0.9


def test_sizes_on_request_and_bad_sizes() -> None:
    spec = spec_for("tiny", n_samples=60, n_genes=30, n_tissues=3)
    tables = generate_tables(spec)
    assert tables.expression.shape[1] == 31
    assert sorted(set(tables.models["OncotreeLineage"]) - {""}) >= sorted(TISSUES[:3])
    with pytest.raises(DataError, match="n_tissues"):
        spec_for("tiny", n_tissues=40)
    with pytest.raises(DataError, match="too few"):
        spec_for("tiny", n_samples=10, n_tissues=6)


def test_tissue_signal_is_learnable_but_classes_overlap() -> None:
    """A linear model beats chance clearly on the small preset, without being perfect."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    tables = generate_tables(spec_for("small", n_genes=1500))
    labelled = tables.models.set_index("ModelID")["OncotreeLineage"]
    frame = tables.expression
    y = labelled.loc[frame[""]].to_numpy(dtype=object)
    keep = y != ""
    X = StandardScaler().fit_transform(np.log1p(frame.iloc[:, 1:].to_numpy()[keep]))
    X_train, X_test, y_train, y_test = train_test_split(X, y[keep], test_size=0.3, stratify=y[keep], random_state=0)
    accuracy = LogisticRegression(max_iter=300).fit(X_train, y_train).score(X_test, y_test)
    majority = max(np.unique(y_train, return_counts=True)[1]) / len(y_train)
    assert majority + 0.2 < accuracy < 0.97


def test_sub_lineages_split_a_tissue_in_two_opposite_clusters() -> None:
    """Split tissues form two clusters with opposite programs; every other row keeps its exact values."""
    from dataclasses import replace

    plain = spec_for("small", n_genes=600)
    split = replace(plain, sub_lineage_share=0.5, sub_lineage_scale=3.0)
    assert SYNTHETIC_PRESETS["full"].sub_lineage_share > 0 and plain.sub_lineage_share == 0
    without = generate_tables(plain).expression.iloc[:, 1:].to_numpy()
    tables = generate_tables(split)
    with_sub = tables.expression.iloc[:, 1:].to_numpy()
    tissues = tables.models.set_index("ModelID")["OncotreeLineage"].loc[tables.expression[""]].to_numpy(dtype=object)

    changed_rows = np.flatnonzero((with_sub != without).any(axis=1))
    changed_tissues = set(tissues[changed_rows]) - {""}  # unlabelled rows belong to a tissue too
    assert len(changed_tissues) == round(0.5 * plain.n_tissues)
    unchanged = ~np.isin(tissues, list(changed_tissues)) & (tissues != "")
    assert unchanged.sum() > 100 and (with_sub[unchanged] == without[unchanged]).all()
    for tissue in changed_tissues:
        members = np.flatnonzero(tissues == tissue)
        difference = (with_sub - without)[members]
        genes = np.flatnonzero(np.abs(difference).max(axis=0) > 1.0)
        assert genes.size >= 6
        # Two sub-lineages: each member's change is (nearly) the first member's or its opposite.
        direction = np.sign(np.corrcoef(difference[:, genes])[0])
        assert (direction > 0).sum() >= 1 and (direction < 0).sum() >= 1, tissue
        # Opposite halves: one sub-lineage goes up where the other goes down.
        up, down = difference[direction > 0][:, genes].mean(axis=0), difference[direction < 0][:, genes].mean(axis=0)
        assert np.corrcoef(up, down)[0, 1] < -0.5
