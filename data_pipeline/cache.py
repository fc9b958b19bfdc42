"""The prepared-data cache: fingerprints, atomic writes, memory-mapped reads.

Layout of ``<cache_dir>``::

    prepared/<fingerprint[:20]>/   X_*.npy, y_*.npy, feature_*.npy, [folds.npy], meta.json
    prepared/.tmp-*/               a write in progress (never read; renamed into place when complete)
    synthetic/<spec key>/          generated DepMap-layout files and checksums.json (synthetic.ensure_files)
    file-hashes.json               content hashes of input files, keyed by path, size and mtime

A directory under ``prepared/`` only ever appears complete: it is written under a temporary name
and renamed in one step, so a killed writer leaves a ``.tmp-*`` folder that is ignored (and
removed later), never a half-written data set.

``meta.json`` records, for every array file, its size, shape, dtype and SHA-256, and a SHA-256 of
each of its own other entries (tissue list, gene names, sample IDs, ...). Every load checks them
(:func:`verify_entry`), so a file damaged after it was written is found before any model reads it.

Input files are fingerprinted by content (SHA-256), but the hash of a file is computed once and
remembered with its size and modification time: later runs only ``stat`` the file. Touching a
file (new mtime, same bytes) costs one re-hash and still finds the same cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from data_pipeline.dataset import SPLITS, PreparedDataset
from data_pipeline.errors import DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""Layout of an entry (2: meta.json carries checksums). Older entries are rebuilt in place."""
FINGERPRINT_FORMAT = 1
"""Part of every fingerprint; bump only when the same inputs and settings must give new arrays."""
META_FILE = "meta.json"
INTEGRITY_KEY = "integrity"
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
    """SHA-256 of an input file's bytes, read in 8 MiB blocks (safe if the file changes meanwhile)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_cache_file(path: Path) -> str:
    """SHA-256 of a cache file, hashed straight from a memory map (~30% faster than block reads).

    Only for files this module wrote: they are never changed in place, so the map cannot shrink under us.
    """
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return hashlib.sha256(mapped).hexdigest()


def fingerprint(inputs: dict[str, Any], settings: dict[str, Any]) -> str:
    """Hash of the input identities and the settings that change the prepared arrays."""
    payload = json.dumps({"format": FINGERPRINT_FORMAT, "inputs": inputs, "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def entry_directory(cache_dir: Path, fingerprint_value: str) -> Path:
    return cache_dir / "prepared" / fingerprint_value[:20]


@contextlib.contextmanager
def entry_lock(cache_dir: Path, fingerprint_value: str) -> Iterator[None]:
    """Serialise preparation of one entry across processes (workers starting together)."""
    with file_lock(cache_dir / "prepared" / f".lock-{fingerprint_value[:20]}"):
        yield


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created with its folder if needed) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent writers just race; atomic renames keep it safe
        yield
        return
    with open(path, "w") as handle:
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
        meta[INTEGRITY_KEY] = {
            "arrays": _array_records(staging, arrays),
            "meta_sha256": {key: _meta_value_hash(value) for key, value in meta.items()},
        }
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


def set_aside(directory: Path) -> Path:
    """Rename a damaged entry to ``<entry>.corrupt-<timestamp>`` (kept for inspection, never read)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1e6) % 1_000_000:06d}"
    target = directory.with_name(f"{directory.name}.corrupt-{stamp}")
    os.rename(directory, target)
    return target


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


def _array_records(directory: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """What :func:`verify_entry` checks for each array file as written: size, shape, dtype, SHA-256."""
    names = sorted(arrays)
    digests = _hash_files([directory / f"{name}.npy" for name in names])
    return {
        name: {
            "bytes": (directory / f"{name}.npy").stat().st_size,
            "shape": list(arrays[name].shape),
            "dtype": np.dtype(arrays[name].dtype).str,
            "sha256": digest,
        }
        for name, digest in zip(names, digests)
    }


def _hash_files(paths: list[Path]) -> list[str]:
    """SHA-256 of several files, in parallel threads (hashlib releases the GIL while hashing)."""
    if len(paths) <= 1:
        return [_hash_cache_file(path) for path in paths]
    with ThreadPoolExecutor(max_workers=min(len(paths), os.cpu_count() or 1)) as pool:
        return list(pool.map(_hash_cache_file, paths))


def _meta_value_hash(value: Any) -> str:
    """SHA-256 of one meta.json entry as JSON (the text survives a write-read round trip unchanged)."""
    return hashlib.sha256(json.dumps(value, allow_nan=False).encode()).hexdigest()


def verify_entry(directory: Path, meta: dict[str, Any]) -> str | None:
    """The first mismatch between an entry's files and what ``meta.json`` recorded, or None if intact.

    Checks every meta.json entry against its checksum, then each array file's size, dtype, shape
    and (all bytes) SHA-256. The answer names the file and what differs.
    """
    integrity = meta.get(INTEGRITY_KEY)
    if not isinstance(integrity, dict) or not isinstance(integrity.get("arrays"), dict):
        return f"{META_FILE}: no checksums recorded"
    recorded_meta = integrity.get("meta_sha256", {})
    for key, value in meta.items():
        if key != INTEGRITY_KEY and recorded_meta.get(key) != _meta_value_hash(value):
            return f"{META_FILE}: entry {key!r} does not match its checksum"
    missing = sorted(set(recorded_meta) - set(meta))
    if missing:
        return f"{META_FILE}: entry {missing[0]!r} is missing"
    records: dict[str, dict[str, Any]] = integrity["arrays"]
    if sorted(records) != sorted(meta.get("arrays", [])):
        return f"{META_FILE}: the array list does not match the checksums"
    for name, record in sorted(records.items()):
        path = directory / f"{name}.npy"
        problem = _check_array_header(path, record)
        if problem:
            return f"{path.name}: {problem}"
    names = sorted(records)
    try:
        digests = _hash_files([directory / f"{name}.npy" for name in names])
    except OSError as error:  # e.g. another worker set the entry aside while we hashed it
        return f"{Path(error.filename or '?').name}: unreadable ({error.strerror or error})"
    for name, digest in zip(names, digests):
        if digest != records[name]["sha256"]:
            return f"{name}.npy: content differs from its SHA-256 (bytes changed after it was written)"
    return None


def _check_array_header(path: Path, record: dict[str, Any]) -> str | None:
    """Size, dtype and shape of one .npy file against its record (reads only the header)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if size == 0:
        return f"empty (0 bytes, expected {record['bytes']})"
    header_readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version not in header_readers:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = header_readers[version](handle)
    except (OSError, ValueError, EOFError) as error:
        return f"not a readable .npy file ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
    if dtype.str != record["dtype"]:
        return f"dtype {dtype} ({dtype.str}), expected {np.dtype(record['dtype'])} ({record['dtype']})"
    if list(shape) != list(record["shape"]):
        return f"shape {tuple(shape)}, expected {tuple(record['shape'])}"
    if size != record["bytes"]:
        return f"size {size} bytes, expected {record['bytes']}"
    return None


class CorruptEntryError(DataError):
    """A cache entry whose files no longer match the checksums in its ``meta.json``."""


class MismatchedEntryError(CorruptEntryError):
    """An intact cache entry stored under another key's name (entries swapped or copied on disk)."""


class StaleEntryError(DataError):
    """A cache entry written in an older cache format (intact, but not readable by this version)."""


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """An entry's ``meta.json`` (of this cache format), unchecked."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except FileNotFoundError:
        raise DataError(f"{directory}: not a prepared data set (no {META_FILE})") from None
    except (OSError, ValueError) as error:
        raise CorruptEntryError(f"{directory}/{META_FILE}: unreadable ({str(error).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise CorruptEntryError(f"{directory}/{META_FILE}: not a JSON object")
    if meta.get("format") != CACHE_FORMAT:
        raise StaleEntryError(f"{directory}: cache format {meta.get('format')!r}, expected {CACHE_FORMAT}")
    return meta


def load_prepared(
    directory: str | os.PathLike[str], *, verify: bool = True, expected_fingerprint: str | None = None
) -> PreparedDataset:
    """Open a prepared data set: arrays as read-only memory maps, metadata from ``meta.json``.

    With ``verify`` (the default) every file is first checked against its recorded checksum,
    size, shape and dtype; a mismatch raises :class:`CorruptEntryError` naming the file. With
    ``expected_fingerprint`` (the key the caller asked for) an entry that records another
    fingerprint raises :class:`MismatchedEntryError` before any file is hashed: an intact entry
    in the wrong place is another data set, never served in place of the one requested.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    if expected_fingerprint is not None and meta.get("fingerprint") != expected_fingerprint:
        raise MismatchedEntryError(
            f"{directory}/{META_FILE}: fingerprint {str(meta.get('fingerprint'))[:20]}..., expected "
            f"{expected_fingerprint[:20]}... (another data set's entry under this name)"
        )
    if verify:
        problem = verify_entry(directory, meta)
        if problem:
            raise CorruptEntryError(f"{directory}/{problem}")

    def array(name: str) -> np.ndarray:
        try:
            return np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
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
