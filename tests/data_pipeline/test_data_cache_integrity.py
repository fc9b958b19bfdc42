"""The prepared-data cache checks every file against meta.json's checksums; damage is set aside and rebuilt."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from data_pipeline import DataConfig, PreparedDataset, load_prepared, prepare_dataset
from data_pipeline.cache import CorruptEntryError, MismatchedEntryError

ARRAYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "feature_mean", "feature_std")


def _random_bytes_in_x_train(directory: Path) -> None:
    path = directory / "X_train.npy"
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # same size and header: only the data bytes change
        handle.seek(size // 2)
        handle.write(np.random.default_rng(1).bytes(64))


def _rewritten_labels(directory: Path) -> None:
    labels = np.load(directory / "y_train.npy")
    np.save(directory / "y_train.npy", np.roll(labels, 1))  # same shape and dtype, other labels


def _reversed_tissues(directory: Path) -> None:
    meta = json.loads((directory / "meta.json").read_text())
    meta["tissues"] = meta["tissues"][::-1]
    (directory / "meta.json").write_text(json.dumps(meta))


def _float64_file(directory: Path) -> None:
    np.save(directory / "X_val.npy", np.load(directory / "X_val.npy").astype(np.float64))


def _empty_file(directory: Path) -> None:
    (directory / "X_test.npy").write_bytes(b"")


def _garbled_meta(directory: Path) -> None:
    path = directory / "meta.json"
    path.write_bytes(path.read_bytes()[:-40] + np.random.default_rng(2).bytes(40))


CASES: list[tuple[Callable[[Path], None], str]] = [
    (_random_bytes_in_x_train, "X_train.npy: content differs from its SHA-256"),
    (_rewritten_labels, "y_train.npy: content differs from its SHA-256"),
    (_reversed_tissues, "meta.json: entry 'tissues' does not match its checksum"),
    (_float64_file, "X_val.npy: dtype float64 (<f8), expected float32 (<f4)"),
    (_empty_file, "X_test.npy: empty (0 bytes, expected"),
    (_garbled_meta, "meta.json: unreadable"),
]


def _snapshot(dataset: PreparedDataset) -> dict[str, np.ndarray]:
    return {name: np.array(getattr(dataset, name)) for name in ARRAYS}


@pytest.mark.parametrize(("damage", "reason"), CASES, ids=[damage.__name__.strip("_") for damage, _ in CASES])
def test_damaged_entry_is_detected_set_aside_and_rebuilt(
    tmp_path: Path, tiny_data_config: DataConfig, caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None], reason: str,
) -> None:
    config = tiny_data_config.replace(cache_dir=str(tmp_path))
    good = prepare_dataset(config)
    expected, tissues = _snapshot(good), list(good.tissues)
    directory = good.directory
    del good
    damage(directory)

    with pytest.raises(CorruptEntryError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        load_prepared(directory)
    with caplog.at_level(logging.WARNING, logger="data_pipeline"):
        rebuilt = prepare_dataset(config)

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0] and "set aside as" in warnings[0], warnings
    set_aside = [p for p in directory.parent.iterdir() if p.name.startswith(f"{directory.name}.corrupt-")]
    assert len(set_aside) == 1 and set_aside[0].name in warnings[0]
    assert rebuilt.directory == directory and rebuilt.tissues == tissues
    for name, array in expected.items():
        rebuilt_array = getattr(rebuilt, name)
        assert rebuilt_array.dtype == array.dtype, name
        np.testing.assert_array_equal(rebuilt_array, array, err_msg=name)
    # The rebuilt entry passes its own checks; the damaged copy still fails them.
    load_prepared(directory)
    with pytest.raises(CorruptEntryError):
        load_prepared(set_aside[0])


def test_an_older_cache_format_is_rebuilt_without_a_warning(
    tmp_path: Path, tiny_data_config: DataConfig, caplog: pytest.LogCaptureFixture
) -> None:
    config = tiny_data_config.replace(cache_dir=str(tmp_path))
    directory = prepare_dataset(config).directory
    meta = json.loads((directory / "meta.json").read_text())
    meta["format"] = 1
    del meta["integrity"]
    (directory / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.INFO, logger="data_pipeline"):
        rebuilt = prepare_dataset(config)
    assert rebuilt.directory == directory and load_prepared(directory).tissues == rebuilt.tissues
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("cache format 1" in r.getMessage() for r in caplog.records)
    assert not list(directory.parent.glob("*.corrupt-*"))


_LOAD = (
    "import sys; import numpy as np; from data_pipeline import DataConfig, prepare_dataset; "
    "d = prepare_dataset(DataConfig(preset='tiny', cache_dir=sys.argv[1])); "
    "print(d.directory, float(np.asarray(d.X_train).sum()))"
)


@pytest.mark.slow
def test_workers_meeting_a_damaged_entry_together_rebuild_it_once(tmp_path: Path) -> None:
    good = prepare_dataset(DataConfig(preset="tiny", cache_dir=str(tmp_path)))
    total = float(np.asarray(good.X_train).sum())
    directory = good.directory
    del good
    _random_bytes_in_x_train(directory)

    root = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen([sys.executable, "-c", _LOAD, str(tmp_path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=root) for _ in range(3)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outputs]
    assert {out.split()[0] for out, _ in outputs} == {str(directory)}
    assert all(float(out.split()[1]) == pytest.approx(total) for out, _ in outputs)
    # Exactly one worker set the damaged entry aside and rebuilt it; the others used the rebuilt one.
    assert len(list(directory.parent.glob(f"{directory.name}.corrupt-*"))) == 1
    assert sum("damaged cache entry" in err for _, err in outputs) == 1
    load_prepared(directory)


def test_an_entry_set_aside_while_it_is_verified_is_rechecked_not_a_crash(
    tmp_path: Path, tiny_data_config: DataConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker may rename the entry away between its header checks and its hashing."""
    from data_pipeline import cache

    config = tiny_data_config.replace(cache_dir=str(tmp_path))
    directory = prepare_dataset(config).directory
    real_hash = cache._hash_cache_file

    def rename_first(path: Path) -> str:
        if directory.exists():
            directory.rename(directory.with_name(directory.name + ".corrupt-elsewhere"))
        return real_hash(path)

    monkeypatch.setattr(cache, "_hash_cache_file", rename_first)
    problem = cache.verify_entry(directory, cache.read_meta(directory))
    assert problem is not None and "unreadable" in problem
    monkeypatch.undo()
    again = prepare_dataset(config)  # the entry is gone: rebuilt under its name
    assert again.directory == directory and load_prepared(directory).tissues == again.tissues


def test_swapped_entries_are_detected_and_each_request_gets_its_own_data(
    tmp_path: Path, tiny_data_config: DataConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Two intact entries swapped on disk pass their checksums but record the other key: rebuilt, not served."""
    all_genes = tiny_data_config.replace(cache_dir=str(tmp_path))
    fifty = all_genes.replace(top_k_genes=50)
    first, second = prepare_dataset(all_genes), prepare_dataset(fifty)
    a, b = first.directory, second.directory
    expected = {a: (first.fingerprint, first.n_features), b: (second.fingerprint, 50)}
    assert first.n_features > 50 and second.n_features == 50
    del first, second
    a.rename(tmp_path / "swap")
    b.rename(a)
    (tmp_path / "swap").rename(b)

    for config, directory in ((all_genes, a), (fifty, b)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="data_pipeline"):
            dataset = prepare_dataset(config)
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "misplaced cache entry" in warnings[0], warnings
        assert "another data set's entry under this name" in warnings[0] and "\n" not in warnings[0]
        assert (dataset.directory, (dataset.fingerprint, dataset.n_features)) == (directory, expected[directory])
        load_prepared(directory, expected_fingerprint=dataset.fingerprint)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="data_pipeline"):
        assert prepare_dataset(all_genes).n_features == expected[a][1]  # now a plain hit
    assert not caplog.records


def test_load_prepared_refuses_an_entry_recorded_under_another_key(tmp_path: Path, tiny_data_config: DataConfig) -> None:
    directory = prepare_dataset(tiny_data_config.replace(cache_dir=str(tmp_path))).directory
    with pytest.raises(MismatchedEntryError, match="fingerprint .*expected 0000000000"):
        load_prepared(directory, expected_fingerprint="0" * 64)
