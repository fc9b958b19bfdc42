"""``prepare_dataset``: the one function that turns a :class:`DataConfig` into a prepared data set."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from data_pipeline import synthetic
from data_pipeline.cache import (
    MismatchedEntryError,
    StaleEntryError,
    entry_directory,
    entry_lock,
    file_content_hash,
    fingerprint,
    load_prepared,
    read_meta,
    set_aside,
    write_entry,
)
from data_pipeline.config import DataConfig
from data_pipeline.dataset import SPLITS, PreparedDataset
from data_pipeline.errors import DataError

if TYPE_CHECKING:  # pandas and pyarrow load only to read and preprocess files, not on a cache hit
    from data_pipeline.loader import LabelledData
    from data_pipeline.preprocess import ProcessedArrays

log = logging.getLogger(__name__)

PIPELINE_VERSION = 3
"""Bump when preprocessing changes the arrays, so that older cache entries are not reused (3: splits keep a
patient's models together)."""

UNGROUPED_PIPELINE_VERSION = 2
"""The version of data sets version 3 cannot change: synthetic ones without replicate lines (one model per
patient), whose arrays are those of version 2; their caches and exports stay valid."""

JACCARD_GENES = 40
"""Genes sampled for the summary's Jaccard heat map of expression presence."""

# Settings that do not change the arrays (the inputs' own identity covers the source files).
_NOT_FINGERPRINTED = {"cache_dir", "expression_path", "model_path", "preset", "synthetic_seed",
                      "synthetic_layout", "synthetic_samples", "synthetic_genes", "synthetic_tissues"}


@contextlib.contextmanager
def _step(message: str, progress: bool) -> Iterator[None]:
    """Log a long step's start and duration (INFO with progress, DEBUG otherwise)."""
    level = logging.INFO if progress else logging.DEBUG
    log.log(level, "%s ...", message)
    started = time.perf_counter()
    yield
    log.log(level, "%s: done in %.1f s", message, time.perf_counter() - started)


def synthetic_spec(config: DataConfig) -> synthetic.SyntheticSpec:
    return synthetic.spec_for(
        config.preset,
        seed=config.synthetic_seed,
        layout=config.synthetic_layout,
        n_samples=config.synthetic_samples,
        n_genes=config.synthetic_genes,
        n_tissues=config.synthetic_tissues,
    )


def _input_identity(config: DataConfig, cache_dir: Path, progress: bool) -> dict[str, Any]:
    if config.source == "synthetic":
        return {"synthetic": synthetic_spec(config).key()}
    identity: dict[str, Any] = {}
    for role, raw in (("expression", config.expression_path), ("model", config.model_path)):
        path = Path(str(raw)).expanduser()
        if not path.is_file():
            what = "expression" if role == "expression" else "model metadata"
            raise DataError(f"{path}: {what} file not found" if not path.exists() else f"{path}: not a file")
        try:
            identity[role] = file_content_hash(path, cache_dir)
        except OSError as error:
            raise DataError(f"{path}: cannot read file ({error.strerror or error})") from None
    return identity


def config_fingerprint(config: DataConfig, *, progress: bool = False) -> str:
    """The cache key of ``config``: input identity plus the settings that shape the arrays."""
    cache_dir = Path(config.cache_dir).expanduser().resolve()
    settings = {k: v for k, v in config.to_dict().items() if k not in _NOT_FINGERPRINTED}
    grouped = config.source != "synthetic" or synthetic_spec(config).replicate_share > 0
    settings["pipeline_version"] = PIPELINE_VERSION if grouped else UNGROUPED_PIPELINE_VERSION
    return fingerprint(_input_identity(config, cache_dir, progress), settings)


def prepare_dataset(config: DataConfig | None = None, *, progress: bool = False) -> PreparedDataset:
    """Return the prepared data set for ``config`` (default: the full synthetic data set).

    The first call generates synthetic files if needed, reads, filters, splits and normalises,
    and writes the cache atomically; later calls with the same inputs and settings open the
    cached arrays as memory maps without reading any CSV.
    """
    config = config or DataConfig()
    cache_dir = Path(config.cache_dir).expanduser().resolve()
    key = config_fingerprint(config, progress=progress)
    directory = entry_directory(cache_dir, key)
    cached, _ = _try_load(directory, key)
    if cached is not None:
        log.debug("cache hit %s", directory)
        return cached
    with entry_lock(cache_dir, key):
        # Again under the lock: another worker may have prepared (or rebuilt) it while we waited, and
        # only the lock holder may set an entry aside (never one that another worker just rebuilt).
        cached, problem = _try_load(directory, key)
        if cached is not None:
            return cached
        if problem is not None:
            _set_aside(directory, problem)
        return _prepare_uncached(config, cache_dir, key, progress)


def _try_load(directory: Path, key: str) -> tuple[PreparedDataset | None, DataError | None]:
    """The verified entry for ``key``, or why it cannot be used (``(None, None)`` when there is none)."""
    if not directory.exists():
        return None, None
    try:
        return load_prepared(directory, expected_fingerprint=key), None
    except DataError as error:
        return None, error
    except KeyError as error:
        return None, DataError(f"{directory}/meta.json: entry {error} is missing")


def _set_aside(directory: Path, problem: DataError) -> None:
    """Move an unusable entry out of the way (one log line), so that it is rebuilt under its name."""
    if isinstance(problem, StaleEntryError):
        stale = directory.with_name(f".tmp-stale-{directory.name}-{time.time_ns()}")  # removed after an hour
        with contextlib.suppress(OSError):
            directory.rename(stale)
        log.info("rebuilding %s: %s", directory.name, problem)
        return
    what = "misplaced" if isinstance(problem, MismatchedEntryError) else "damaged"
    try:
        target = set_aside(directory)
    except OSError as error:
        log.warning("%s cache entry: %s; could not set it aside (%s)", what, problem, error.strerror or error)
        return
    log.warning("%s cache entry: %s; set aside as %s, rebuilding", what, problem, target.name)


def _prepare_uncached(config: DataConfig, cache_dir: Path, key: str, progress: bool) -> PreparedDataset:
    if config.source == "synthetic":
        spec = synthetic_spec(config)
        with _step(f"making the synthetic {config.preset} data set ({spec.n_samples} x {spec.n_genes})", progress):
            expression_path, model_path = synthetic.ensure_files(spec, cache_dir)
    else:
        expression_path = Path(str(config.expression_path)).expanduser()
        model_path = Path(str(config.model_path)).expanduser()
    with _step(f"reading {expression_path.name} and {model_path.name}", progress):
        from data_pipeline.loader import load_labelled
        from data_pipeline.preprocess import preprocess

        data = load_labelled(expression_path, model_path, config.label_column)
    with _step("filtering, splitting and normalising", progress):
        processed = preprocess(data, config, source=str(model_path))
    arrays, meta = _cache_payload(config, data, processed, expression_path, model_path)
    with _step("writing the cache", progress):
        directory = write_entry(cache_dir, key, arrays, meta)
    dataset = load_prepared(directory, verify=False, expected_fingerprint=key)  # just written and hashed
    log.info(
        "prepared %d samples x %d genes, %d tissues (train %d, val %d, test %d) in %s",
        sum(len(ids) for ids in dataset.sample_ids.values()), dataset.n_features, dataset.n_classes,
        len(dataset.y_train), len(dataset.y_val), len(dataset.y_test), directory,
    )
    return dataset


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _sample_info(data: LabelledData, rows: np.ndarray) -> dict[str, list[Any]]:
    from data_pipeline.loader import METADATA_COLUMNS

    info: dict[str, list[Any]] = {"tissue": [data.labels[i] for i in rows]}
    for column in METADATA_COLUMNS:
        values = data.metadata[column].to_numpy(dtype=object)[rows]
        if column == "Age":
            info[column] = [_parse_age(v) for v in values]
        else:
            info[column] = [str(v) if v is not None else "" for v in values]
    return info


def _parse_age(value: Any) -> float | None:
    try:
        age = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(age) else age


def _jaccard_sample(values: np.ndarray, gene_names: list[str], seed: int) -> dict[str, Any]:
    """Jaccard similarity of expression presence (value > 0) between a seeded sample of genes."""
    rng = np.random.default_rng(seed)
    count = min(JACCARD_GENES, values.shape[1])
    genes = np.sort(rng.choice(values.shape[1], size=count, replace=False))
    present = (values[:, genes] > 0).astype(np.float64)
    intersection = present.T @ present
    totals = present.sum(axis=0)
    union = totals[:, None] + totals[None, :] - intersection
    jaccard = np.divide(intersection, union, out=np.ones_like(intersection), where=union > 0)
    return {"genes": [gene_names[g] for g in genes], "matrix": np.round(jaccard, 4).tolist()}


def _cache_payload(
    config: DataConfig,
    data: LabelledData,
    processed: ProcessedArrays,
    expression_path: Path,
    model_path: Path,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        arrays[f"X_{split}"] = processed.X[split]
        arrays[f"y_{split}"] = processed.y[split]
    arrays["feature_mean"] = processed.feature_mean
    arrays["feature_std"] = processed.feature_std
    arrays["X_train_unfiltered"] = processed.X_train_unfiltered
    if processed.folds is not None:
        arrays["folds"] = processed.folds
    zero_fraction = (data.values == 0).mean(axis=0, dtype=np.float64)
    arrays["gene_zero_fraction"] = zero_fraction.astype(np.float32)

    kept_rows = np.concatenate([processed.rows[s] for s in SPLITS])
    summary = {
        "n_expression_rows": data.n_expression_rows,
        "n_unlabeled_dropped": data.n_unlabeled,
        "n_labelled": len(data.labels),
        "n_samples": int(kept_rows.size),
        "n_genes_input": len(data.gene_names),
        "n_genes_kept": int(processed.gene_index.size),
        "tissue_counts_input": processed.tissue_counts_input,
        "dropped_tissues": processed.dropped_tissues,
        "sparsity": float((data.values == 0).mean(dtype=np.float64)),
        "split_sizes": {s: int(processed.rows[s].size) for s in SPLITS},
        "jaccard": _jaccard_sample(data.values[kept_rows], data.gene_names, config.split_seed),
    }
    provenance = {
        "source": config.source,
        "layout": data.layout,
        "expression_file": str(expression_path.resolve()),
        "model_file": str(model_path.resolve()),
        "label_column": config.label_column,
        "log_applied": processed.log_applied,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if config.source == "synthetic":
        provenance["synthetic_spec"] = synthetic_spec(config).__dict__
    meta = {
        "tissues": processed.tissues,
        "gene_names": [data.gene_names[g] for g in processed.gene_index],
        "sample_ids": {s: [data.model_ids[i] for i in processed.rows[s]] for s in SPLITS},
        "sample_info": {
            s: {k: [_json_value(v) for v in vs] for k, vs in _sample_info(data, processed.rows[s]).items()}
            for s in SPLITS
        },
        "settings": config.to_dict(),
        "provenance": provenance,
        "summary": summary,
    }
    return arrays, meta


def load_summary(dataset: PreparedDataset) -> dict[str, Any]:
    """The statistics recorded when ``dataset`` was prepared (counts, sparsity, Jaccard sample)."""
    if dataset.directory is None:
        raise DataError("this data set was not loaded from a cache directory; it has no summary")
    return read_meta(dataset.directory)["summary"]
