"""The prepared-data cache: reuse without reading CSV, invalidation, atomic writes, memory maps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from data_pipeline import DataConfig, DataError, PreparedDataset, load_prepared, loader, prepare_dataset, synthetic
from tests.support import data_samples as samples


def _forbid_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been used; a CSV was read")

    monkeypatch.setattr(loader, "read_expression", refuse)
    monkeypatch.setattr(loader, "read_models", refuse)
    monkeypatch.setattr(synthetic, "generate_tables", refuse)


def test_second_prepare_is_a_memory_mapped_cache_hit(
    tiny_data_config: DataConfig, tiny_dataset: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_reading(monkeypatch)
    started = time.perf_counter()
    again = prepare_dataset(tiny_data_config)
    assert time.perf_counter() - started < 0.5
    assert again.directory == tiny_dataset.directory
    assert isinstance(again.X_train, np.memmap) and not again.X_train.flags.writeable
    np.testing.assert_array_equal(again.X_train, tiny_dataset.X_train)
    assert load_prepared(tiny_dataset.directory).fingerprint == tiny_dataset.fingerprint


def test_any_setting_change_gives_a_new_fingerprint(tiny_data_config: DataConfig, tiny_dataset: PreparedDataset) -> None:
    changes = [
        {"top_k_genes": 100}, {"min_gene_variance": 0.2}, {"split_seed": 7}, {"val_fraction": 0.2},
        {"min_samples_per_tissue": 5}, {"n_folds": 3}, {"synthetic_seed": 1}, {"label_column": "OncotreePrimaryDisease"},
    ]
    fingerprints = {tiny_dataset.fingerprint}
    from data_pipeline.prepare import config_fingerprint

    for change in changes:
        fingerprints.add(config_fingerprint(tiny_data_config.replace(**change)))
    assert len(fingerprints) == len(changes) + 1
    # The cache location is not a setting of the data.
    assert config_fingerprint(tiny_data_config.replace(cache_dir="/elsewhere")) == tiny_dataset.fingerprint


def test_input_file_content_is_fingerprinted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expression, model = samples.write_pair(tmp_path / "files")
    config = DataConfig(source="depmap", expression_path=str(expression), model_path=str(model),
                        min_samples_per_tissue=3, val_fraction=0.25, test_fraction=0.25,
                        cache_dir=str(tmp_path / "cache"))
    first = prepare_dataset(config)
    # Touching a file (same bytes, new mtime) re-hashes it and still hits the cache.
    os.utime(expression, ns=(time.time_ns(), time.time_ns() + 10**9))
    hashed = []
    from data_pipeline import cache

    real_hash = cache.hash_file
    with monkeypatch.context() as patch:
        patch.setattr(cache, "hash_file", lambda path: hashed.append(path) or real_hash(path))
        _forbid_reading(patch)
        assert prepare_dataset(config).directory == first.directory
    assert hashed == [expression]
    # Unchanged size and mtime: the remembered hash is used, the file is not read at all.
    with monkeypatch.context() as patch:
        patch.setattr(cache, "hash_file", lambda path: pytest.fail(f"re-hashed {path}"))
        _forbid_reading(patch)
        assert prepare_dataset(config).directory == first.directory
    # Different content: a new entry.
    expression.write_text(samples.classic_expression_text().replace("4.331", "4.332"))
    changed = prepare_dataset(config)
    assert changed.fingerprint != first.fingerprint and changed.directory != first.directory


def test_temporary_and_broken_entries_are_never_used(tmp_path: Path, tiny_data_config: DataConfig) -> None:
    config = tiny_data_config.replace(cache_dir=str(tmp_path))
    good = prepare_dataset(config)
    # A damaged entry (array file gone) is set aside and rebuilt, not served.
    (good.directory / "X_val.npy").unlink()
    rebuilt = prepare_dataset(config)
    assert rebuilt.directory == good.directory
    assert np.asarray(rebuilt.X_val).shape[0] == len(rebuilt.sample_ids["val"])
    with pytest.raises(DataError, match="not a prepared data set"):
        load_prepared(tmp_path)


_KILLED_WRITER = r"""
import os, sys
import numpy as np
from data_pipeline import DataConfig, prepare_dataset
from data_pipeline import cache

real_save = np.save
count = 0
def save_then_die(path, array, **kwargs):
    global count
    real_save(path, array, **kwargs)
    count += 1
    if count == 3:
        os._exit(9)   # killed mid-write: some arrays written, no meta.json, not renamed
cache.np.save = save_then_die
prepare_dataset(DataConfig(preset="tiny", cache_dir=sys.argv[1]))
"""


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_nothing_usable(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 9, result.stderr
    prepared = tmp_path / "prepared"
    entries = [p.name for p in prepared.iterdir() if not p.name.startswith(".lock")]
    assert entries and all(name.startswith(".tmp-") for name in entries)  # only the staging folder
    dataset = prepare_dataset(DataConfig(preset="tiny", cache_dir=str(tmp_path)))
    assert (dataset.directory / "meta.json").is_file()
    assert len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test) == 180


def test_worker_processes_share_the_cache(tiny_data_config: DataConfig, tiny_dataset: PreparedDataset) -> None:
    code = (
        "import sys, json; from data_pipeline import DataConfig, prepare_dataset; "
        "from data_pipeline import loader; loader.read_expression = None; "
        "d = prepare_dataset(DataConfig(**json.loads(sys.argv[1]))); print(d.directory)"
    )
    import json

    result = subprocess.run([sys.executable, "-c", code, json.dumps(tiny_data_config.to_dict())],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tiny_dataset.directory)


@pytest.mark.slow
def test_workers_starting_together_prepare_once(tmp_path: Path) -> None:
    code = (
        "import sys; from data_pipeline import DataConfig, prepare_dataset; "
        "print(prepare_dataset(DataConfig(preset='tiny', synthetic_seed=5, cache_dir=sys.argv[1])).directory)"
    )
    root = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=root) for _ in range(3)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1
    entries = [p for p in (tmp_path / "prepared").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    assert not list((tmp_path / "prepared").glob(".tmp-*"))
    assert len([p for p in (tmp_path / "synthetic").iterdir() if not p.name.startswith(".lock")]) == 1  # one generation
