"""Preprocessing: no leakage from val/test, stratified splits, filters, folds, determinism."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from data_pipeline import SPLITS, DataConfig, PreparedDataset, prepare_dataset
from data_pipeline.gene_filter import gene_filter_of
from data_pipeline.loader import load_labelled
from data_pipeline.synthetic import generate_tables, spec_for, write_tables


def _raw_rows(dataset: PreparedDataset, split: str) -> np.ndarray:
    """The split's input values (before normalisation) for the kept genes, read from the files."""
    data = load_labelled(dataset.provenance["expression_file"], dataset.provenance["model_file"], "OncotreeLineage")
    row = {m: i for i, m in enumerate(data.model_ids)}
    column = {g: j for j, g in enumerate(data.gene_names)}
    rows = [row[m] for m in dataset.sample_ids[split]]
    columns = [column[g] for g in dataset.gene_names]
    return data.values[np.ix_(rows, columns)].astype(np.float64)


def test_scaler_statistics_are_the_training_splits_alone(tiny_dataset: PreparedDataset) -> None:
    train = _raw_rows(tiny_dataset, "train")
    np.testing.assert_allclose(tiny_dataset.feature_mean, train.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tiny_dataset.feature_std, train.std(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(tiny_dataset.X_train).mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(tiny_dataset.X_train).std(axis=0), 1.0, atol=1e-3)
    # Val/test are transformed with the training statistics, so they are not exactly centred.
    val = _raw_rows(tiny_dataset, "val")
    expected = (val - tiny_dataset.feature_mean) / tiny_dataset.feature_std
    np.testing.assert_allclose(tiny_dataset.X_val, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(np.asarray(tiny_dataset.X_val).mean(axis=0)).max() > 0.05


def test_changing_val_and_test_rows_changes_no_fitted_statistic(tmp_path: Path, tiny_dataset: PreparedDataset) -> None:
    spec = spec_for("tiny")
    tables = generate_tables(spec)
    held_out = set(tiny_dataset.sample_ids["val"]) | set(tiny_dataset.sample_ids["test"])
    frame = tables.expression
    genes = frame.columns[1:]
    mask = frame[""].isin(held_out).to_numpy()
    assert mask.sum() == len(held_out)
    frame.loc[mask, genes] = frame.loc[mask, genes].to_numpy() * 3.0 + 5.0  # wildly different held-out rows
    expression, model = write_tables(tables, tmp_path / "files", "classic")
    changed = prepare_dataset(DataConfig(source="depmap", expression_path=str(expression), model_path=str(model),
                                         cache_dir=str(tmp_path / "cache")))
    assert changed.sample_ids == tiny_dataset.sample_ids
    assert changed.gene_names == tiny_dataset.gene_names  # the variance filter saw training rows only
    np.testing.assert_array_equal(changed.feature_mean, tiny_dataset.feature_mean)
    np.testing.assert_array_equal(changed.feature_std, tiny_dataset.feature_std)
    np.testing.assert_array_equal(changed.X_train, tiny_dataset.X_train)
    np.testing.assert_array_equal(changed.X_train_unfiltered, tiny_dataset.X_train_unfiltered)
    assert not np.allclose(changed.X_val, tiny_dataset.X_val)


def test_splits_are_stratified_and_disjoint(tiny_dataset: PreparedDataset) -> None:
    ids = [set(tiny_dataset.sample_ids[s]) for s in SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    totals = Counter()
    per_split = {}
    for split in SPLITS:
        per_split[split] = Counter(np.asarray(tiny_dataset.split(split)[1]).tolist())
        totals.update(per_split[split])
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    for tissue, total in totals.items():
        for split, fraction in fractions.items():
            assert abs(per_split[split][tissue] - fraction * total) <= 1.5, (tissue, split, per_split)
    assert len(tiny_dataset.sample_info["val"]["tissue"]) == len(tiny_dataset.y_val)
    labels = [tiny_dataset.tissues[i] for i in np.asarray(tiny_dataset.y_val)]
    assert labels == tiny_dataset.sample_info["val"]["tissue"]


def test_tissue_index_is_sorted_and_stable(tiny_dataset: PreparedDataset) -> None:
    assert tiny_dataset.tissues == sorted(tiny_dataset.tissues)
    assert len(tiny_dataset.tissues) == 6


def test_same_settings_give_identical_arrays_and_new_seed_a_new_split(tmp_path: Path, tiny_dataset: PreparedDataset) -> None:
    again = prepare_dataset(DataConfig(preset="tiny", cache_dir=str(tmp_path / "a")))
    assert again.fingerprint == tiny_dataset.fingerprint
    assert again.sample_ids == tiny_dataset.sample_ids
    for split in SPLITS:
        np.testing.assert_array_equal(again.split(split)[0], tiny_dataset.split(split)[0])
    reseeded = prepare_dataset(DataConfig(preset="tiny", split_seed=1, cache_dir=str(tmp_path / "a")))
    assert reseeded.sample_ids["test"] != tiny_dataset.sample_ids["test"]


def test_gene_filters(tmp_path: Path, tiny_dataset: PreparedDataset) -> None:
    summary_genes = 400  # the tiny preset's genes
    assert 0 < tiny_dataset.n_features < summary_genes  # low-variance housekeeping genes removed
    assert np.all(np.asarray(tiny_dataset.feature_std) ** 2 >= 0.05 - 1e-4)
    top = prepare_dataset(DataConfig(preset="tiny", top_k_genes=50, cache_dir=str(tmp_path)))
    assert top.n_features == 50
    assert set(top.gene_names) <= set(tiny_dataset.gene_names)
    # The 50 kept are the most variable in the training split.
    variance = np.asarray(tiny_dataset.feature_std, dtype=np.float64) ** 2
    kept = np.isin(tiny_dataset.gene_names, top.gene_names)
    assert variance[kept].min() >= variance[~kept].max() - 1e-6
    everything = prepare_dataset(DataConfig(preset="tiny", min_gene_variance=0.0, cache_dir=str(tmp_path)))
    assert everything.n_features > tiny_dataset.n_features
    # what CV folds refit the filter on: the training split before filtering, every gene that varies there
    for dataset in (tiny_dataset, top, everything):
        unfiltered = dataset.X_train_unfiltered
        assert isinstance(unfiltered, np.memmap) and not unfiltered.flags.writeable
        assert unfiltered.shape == (len(dataset.y_train), everything.n_features)
        refit = gene_filter_of(dataset.settings).fit(unfiltered)  # on every training row: the prepared genes
        assert refit.genes_.size == dataset.n_features
        z_scored = (refit.transform(unfiltered) - dataset.feature_mean) / dataset.feature_std
        np.testing.assert_allclose(z_scored, dataset.X_train, atol=1e-4)


def test_rare_tissues_dropped(tmp_path: Path) -> None:
    dataset = prepare_dataset(DataConfig(preset="tiny", min_samples_per_tissue=30, cache_dir=str(tmp_path)))
    assert dataset.tissues == ["CNS/Brain", "Lung", "Lymphoid"]  # tiny has 41, 34, 30, 27, 25, 23


def test_log_transform_applied_only_to_unlogged_input(tmp_path: Path) -> None:
    spec = spec_for("tiny")
    tables = generate_tables(spec)
    genes = tables.expression.columns[1:]
    tables.expression[genes] = np.round(2.0 ** tables.expression[genes].to_numpy() - 1.0, 3)  # back to TPM
    expression, model = write_tables(tables, tmp_path / "tpm", "classic")
    tpm = prepare_dataset(DataConfig(source="depmap", expression_path=str(expression), model_path=str(model),
                                     cache_dir=str(tmp_path / "cache")))
    assert tpm.provenance["log_applied"] is True
    logged = prepare_dataset(DataConfig(preset="tiny", cache_dir=str(tmp_path / "cache")))
    assert logged.provenance["log_applied"] is False
    assert tpm.gene_names == logged.gene_names
    np.testing.assert_allclose(tpm.feature_mean, logged.feature_mean, atol=2e-3)


def test_stratified_folds(tmp_path: Path) -> None:
    dataset = prepare_dataset(DataConfig(preset="tiny", n_folds=4, cache_dir=str(tmp_path)))
    folds = np.asarray(dataset.folds)
    y = np.asarray(dataset.y_train)
    assert folds.shape == y.shape and set(folds.tolist()) == {0, 1, 2, 3}
    for tissue in range(dataset.n_classes):
        counts = np.bincount(folds[y == tissue], minlength=4)
        assert counts.max() - counts.min() <= 1


def test_tiny_preset_is_learnable_but_not_trivial(tiny_dataset: PreparedDataset) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(tiny_dataset.X_train, tiny_dataset.y_train)
    accuracy = model.score(tiny_dataset.X_val, tiny_dataset.y_val)
    chance = np.bincount(tiny_dataset.y_train).max() / len(tiny_dataset.y_train)
    assert accuracy > chance + 0.4
