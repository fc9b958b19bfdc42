"""The prepared-data cache: fingerprints, atomic writes, memory-mapped reads.

Layout of ``<cache_dir>``::

    prepared/<fingerprint[:20]>/   X_*.npy, y_*.npy, feature_*.npy, [folds.npy], meta.json
    prepared/.tmp-*/               a write in progress (never read; renamed into place when complete)
    synthetic/<spec key>/          generated DepMap-layout files
    file-hashes.json               content hashes of input files, keyed by path, size and mtime

A directory under ``prepared/`` only ever appears complete: it is written under a temporary name
and renamed in one step, so a killed writer leaves a ``.tmp-*`` folder that is ignored (and
removed later), never a half-written data set.

Input files are fingerprinted by content (SHA-256), but the hash of a file is computed once and
remembered with its size and modification time: later runs only ``stat`` the file. Touching a
file (new mtime, same bytes) costs one re-hash and still finds the same cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_pipeline.dataset import SPLITS, PreparedDataset
from data_pipeline.errors import DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
META_FILE = "meta.json"
STALE_TEMP_SECONDS = 3600


def file_content_hash(path: Path, cache_dir: Path) -> str:
    """SHA-256 of ``path``'s bytes, remembered in ``cache_dir/file-hashes.json`` by (size, mtime)."""
    stat = path.stat()
    key = str(path.resolve())
    registry_path = cache_dir / "file-hashes.json"
    registry: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        registry = json.loads(registry_path.read_text())
    entry = registry.get(key)
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return str(entry["sha256"])
    started = time.perf_counter()
    value = hash_file(path)
    log.info("fingerprinted %s (%.0f MB) in %.1f s; remembered until the file changes",
             path.name, stat.st_size / 1e6, time.perf_counter() - started)
    registry[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
    with contextlib.suppress(OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(registry_path, registry)
    return value


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(inputs: dict[str, Any], settings: dict[str, Any]) -> str:
    """Hash of the input identities and the settings that change the prepared arrays."""
    payload = json.dumps({"format": CACHE_FORMAT, "inputs": inputs, "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def entry_directory(cache_dir: Path, fingerprint_value: str) -> Path:
    return cache_dir / "prepared" / fingerprint_value[:20]


@contextlib.contextmanager
def entry_lock(cache_dir: Path, fingerprint_value: str) -> Iterator[None]:
    """Serialise preparation of one entry across processes (workers starting together)."""
    root = cache_dir / "prepared"
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent preparers just race; the rename keeps it safe
        yield
        return
    with open(root / f".lock-{fingerprint_value[:20]}", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_entry(
    cache_dir: Path, fingerprint_value: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> Path:
    """Write arrays and ``meta.json`` under a temporary name, then rename into place."""
    root = cache_dir / "prepared"
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    final = entry_directory(cache_dir, fingerprint_value)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
        meta = {**meta, "format": CACHE_FORMAT, "fingerprint": fingerprint_value, "arrays": sorted(arrays)}
        (staging / META_FILE).write_text(json.dumps(meta, allow_nan=False))
        for item in staging.iterdir():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / META_FILE).is_file():
                raise
            log.debug("another process wrote %s first", final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _remove_stale_temporaries(root: Path) -> None:
    now = time.time()
    for item in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - item.stat().st_mtime > STALE_TEMP_SECONDS:
                shutil.rmtree(item, ignore_errors=True)


def _write_json_atomic(path: Path, payload: Any) -> None:
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(payload, out)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    directory = Path(directory)
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except FileNotFoundError:
        raise DataError(f"{directory}: not a prepared data set (no {META_FILE})") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{directory}/{META_FILE}: unreadable ({error})") from None
    if meta.get("format") != CACHE_FORMAT:
        raise DataError(f"{directory}: cache format {meta.get('format')!r}, expected {CACHE_FORMAT}")
    return meta


def load_prepared(directory: str | os.PathLike[str]) -> PreparedDataset:
    """Open a prepared data set: arrays as read-only memory maps, metadata from ``meta.json``."""
    directory = Path(directory)
    meta = read_meta(directory)

    def array(name: str) -> np.ndarray:
        try:
            return np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"{directory}/{name}.npy: unreadable ({error})") from None

    arrays = {name: array(name) for name in meta["arrays"]}
    for split in SPLITS:
        if arrays[f"X_{split}"].shape[0] != arrays[f"y_{split}"].shape[0]:
            raise DataError(f"{directory}: X_{split} and y_{split} disagree in length")
    return PreparedDataset(
        X_train=arrays["X_train"],
        y_train=arrays["y_train"],
        X_val=arrays["X_val"],
        y_val=arrays["y_val"],
        X_test=arrays["X_test"],
        y_test=arrays["y_test"],
        tissues=list(meta["tissues"]),
        gene_names=list(meta["gene_names"]),
        sample_ids={split: list(ids) for split, ids in meta["sample_ids"].items()},
        fingerprint=str(meta["fingerprint"]),
        sample_info=meta["sample_info"],
        folds=arrays.get("folds"),
        X_train_unfiltered=arrays.get("X_train_unfiltered"),
        settings=meta["settings"],
        directory=directory,
        feature_mean=arrays.get("feature_mean"),
        feature_std=arrays.get("feature_std"),
        provenance=meta.get("provenance", {}),
    )
