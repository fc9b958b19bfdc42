"""Generated synthetic files carry checksums: a damaged file is regenerated, never read as a smaller data set."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from data_pipeline import DataConfig, prepare_dataset
from data_pipeline.synthetic import CHECKSUM_FILE, ensure_files, spec_for


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.rfind(b"\n", 0, len(data) * 2 // 3) + 1])  # whole rows lost: still valid CSV


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] = ord("9") if data[len(data) // 2] != ord("9") else ord("8")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("damage", "reason"), [(_truncate, "bytes, expected"), (_garble, "differs from its SHA-256")])
def test_a_damaged_generated_csv_is_regenerated_to_the_full_sample_count(
    tmp_path: Path, tiny_data_config: DataConfig, caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None], reason: str,
) -> None:
    config = tiny_data_config.replace(cache_dir=str(tmp_path))
    first = prepare_dataset(config)
    samples = sum(len(ids) for ids in first.sample_ids.values())
    expression, _ = ensure_files(spec_for("tiny"), tmp_path)
    original = _digest(expression)
    damage(expression)
    shutil.rmtree(first.directory)  # as if another setting (or a cleared cache) needs the CSV read again
    del first

    with caplog.at_level(logging.WARNING, logger="data_pipeline"):
        again = prepare_dataset(config)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "damaged synthetic files" in warnings[0] and reason in warnings[0], warnings
    assert expression.name in warnings[0] and "regenerating" in warnings[0]
    assert sum(len(ids) for ids in again.sample_ids.values()) == samples
    assert _digest(expression) == original
    assert not [p for p in expression.parent.parent.iterdir() if p.name.startswith(".tmp-")]


def test_checksums_record_size_hash_and_shape(tmp_path: Path) -> None:
    spec = spec_for("tiny")
    expression, model = ensure_files(spec, tmp_path)
    record = json.loads((expression.parent / CHECKSUM_FILE).read_text())
    assert record["spec_key"] == spec.key()
    entry = record["files"][expression.name]
    assert entry["sha256"] == _digest(expression) and entry["bytes"] == expression.stat().st_size
    assert entry["columns"] == spec.n_genes + 1  # the ID column, then one per gene
    assert entry["rows"] == len(expression.read_text().splitlines()) - 1  # the header is not a row
    assert record["files"][model.name]["sha256"] == _digest(model)
    assert ensure_files(spec, tmp_path) == (expression, model)  # intact: used as is


def test_files_from_an_older_version_or_another_spec_are_regenerated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = spec_for("tiny")
    expression, _ = ensure_files(spec, tmp_path)
    original = _digest(expression)
    (expression.parent / CHECKSUM_FILE).unlink()  # as written before checksums existed
    with caplog.at_level(logging.INFO, logger="data_pipeline"):
        ensure_files(spec, tmp_path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("older version" in r.getMessage() for r in caplog.records)
    assert _digest(expression) == original

    other = spec_for("tiny", seed=5)
    other_expression, _ = ensure_files(other, tmp_path)
    shutil.rmtree(expression.parent)
    other_expression.parent.rename(expression.parent)  # another spec's files under this spec's name
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="data_pipeline"):
        ensure_files(spec, tmp_path)
    assert any("made for spec" in r.getMessage() for r in caplog.records)
    assert _digest(expression) == original


_PREPARE = (
    "import sys; from data_pipeline import DataConfig, prepare_dataset; "
    "d = prepare_dataset(DataConfig(preset='tiny', cache_dir=sys.argv[1], top_k_genes=int(sys.argv[2]))); "
    "print(sum(len(ids) for ids in d.sample_ids.values()))"
)


@pytest.mark.slow
def test_workers_meeting_a_truncated_csv_together_regenerate_it_once(tmp_path: Path) -> None:
    """Workers preparing different settings from one damaged generated CSV: one regenerates, all see it whole."""
    first = prepare_dataset(DataConfig(preset="tiny", cache_dir=str(tmp_path)))
    samples = sum(len(ids) for ids in first.sample_ids.values())
    expression, _ = ensure_files(spec_for("tiny"), tmp_path)
    original = _digest(expression)
    _truncate(expression)

    root = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen([sys.executable, "-c", _PREPARE, str(tmp_path), str(k)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=root) for k in (50, 60, 70)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outputs]
    assert [int(out) for out, _ in outputs] == [samples] * 3
    assert sum("damaged synthetic files" in err for _, err in outputs) == 1, [err for _, err in outputs]
    assert _digest(expression) == original
