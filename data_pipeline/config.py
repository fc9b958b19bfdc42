"""Data settings: where the data comes from and how it is filtered, normalised and split."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

from data_pipeline.errors import DataError

SOURCES = ("synthetic", "depmap")
PRESETS = ("tiny", "small", "full")
LAYOUTS = ("classic", "25q3")
LOG_TRANSFORMS = ("auto", "yes", "no")
PATH_SETTINGS = ("expression_path", "model_path", "cache_dir")
"""Settings that name a file or folder; DataConfig holds them as absolute paths."""


def default_cache_dir() -> str:
    """``$HPO_HOME/cache`` (``hpo-runs/cache`` when HPO_HOME is unset)."""
    return os.environ.get("HPO_HOME", "hpo-runs") + "/cache"


def resolve_relative_paths(mapping: Mapping[str, Any], base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A copy of a ``[data]`` table whose relative paths (:data:`PATH_SETTINGS`) are joined to ``base_dir``.

    Paths written in a file are relative to that file's folder, not to wherever the command runs.
    """
    resolved = dict(mapping)
    for key in PATH_SETTINGS:
        value = resolved.get(key)
        if isinstance(value, str) and value:
            expanded = os.path.expanduser(value)
            if not os.path.isabs(expanded):
                resolved[key] = os.path.abspath(os.path.join(os.fspath(base_dir), expanded))
    return resolved


SEED_LIMIT = 2**32
"""Seeds are 0 .. 2**32 - 1: scikit-learn's ``random_state`` and numpy's legacy seeding take no more."""
MAX_SYNTHETIC_SAMPLES = 1_000_000


def fewest_synthetic_samples(config: DataConfig) -> int | None:
    """The fewest ``synthetic_samples`` with which ``config``'s synthetic data can be split (None: unknown).

    Enough that at least two tissues (as the generator sizes them) keep ``min_samples_per_tissue``
    samples and the stratified splits can hold one sample of each kept tissue.
    """
    import math
    from dataclasses import replace

    from data_pipeline.synthetic import SYNTHETIC_PRESETS, tissue_counts

    base = SYNTHETIC_PRESETS[config.preset]
    spec = replace(base, n_tissues=config.synthetic_tissues or base.n_tissues)
    n = 3 * spec.n_tissues
    while n <= MAX_SYNTHETIC_SAMPLES:
        counts = tissue_counts(replace(spec, n_samples=n))
        kept = counts[counts >= config.min_samples_per_tissue]
        total, classes = int(kept.sum()), int(kept.size)
        test = math.ceil(config.test_fraction * total)
        val = math.ceil(config.val_fraction / (1.0 - config.test_fraction) * (total - test))
        if classes >= 2 and min(test, val, total - test - val) >= classes:
            return n
        n = n + 1 if n < 1000 else int(n * 1.01)
    return None


@dataclass(frozen=True)
class DataConfig:
    """Every setting of the data pipeline; a study file's ``[data]`` table maps onto it.

    ``source="synthetic"`` (the default) makes a seeded DepMap-like data set on the spot;
    ``source="depmap"`` reads ``expression_path`` and ``model_path`` (DepMap release files).
    """

    source: str = "synthetic"
    preset: str = "full"
    """Synthetic size: ``tiny`` (tests), ``small``, ``full`` (1,402 x 18,292, 39 tissues)."""
    synthetic_seed: int = 0
    synthetic_layout: str = "classic"
    """DepMap file layout the generator writes: ``classic`` (up to 25Q2) or ``25q3``."""
    synthetic_samples: int | None = None
    """Override the preset's number of labelled samples."""
    synthetic_genes: int | None = None
    """Override the preset's number of genes."""
    synthetic_tissues: int | None = None
    """Override the preset's number of tissues (at most 39)."""
    expression_path: str | None = None
    model_path: str | None = None
    label_column: str = "OncotreeLineage"
    min_samples_per_tissue: int = 10
    """Tissues with fewer labelled samples are dropped (at least 3, so every split can hold one)."""
    top_k_genes: int | None = None
    """Keep the k most variable genes (training split) among those passing ``min_gene_variance``."""
    min_gene_variance: float = 0.05
    """Drop genes whose training-split variance is below this (low-variance "housekeeping" genes)."""
    log_transform: str = "auto"
    """``auto``: apply log2(x+1) only when values look unlogged (max > 50); ``yes``; ``no``."""
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    n_folds: int = 0
    """Stratified k-fold assignment of the training rows (0 = none)."""
    cache_dir: str = field(default_factory=default_cache_dir)
    """Relative paths here (and in the file fields) are made absolute against the current directory
    when the config is made; a study file's are relative to the study file (:func:`resolve_relative_paths`)."""

    def __post_init__(self) -> None:
        for name in PATH_SETTINGS:  # absolute from here on: every process (and export) sees the same files
            value = getattr(self, name)
            if isinstance(value, str) and value:
                object.__setattr__(self, name, os.path.abspath(os.path.expanduser(value)))
        self._validate()

    def _validate(self, where: str = "") -> None:
        prefix = f"{where}: " if where else ""

        def fail(message: str) -> None:
            raise DataError(f"{prefix}[data] {message}")

        if self.source not in SOURCES:
            fail(f"source={self.source!r}; expected one of {SOURCES}")
        if self.preset not in PRESETS:
            fail(f"preset={self.preset!r}; expected one of {PRESETS}")
        if self.synthetic_layout not in LAYOUTS:
            fail(f"synthetic_layout={self.synthetic_layout!r}; expected one of {LAYOUTS}")
        if self.log_transform not in LOG_TRANSFORMS:
            fail(f"log_transform={self.log_transform!r}; expected one of {LOG_TRANSFORMS}")
        if self.source == "depmap" and not (self.expression_path and self.model_path):
            fail("source='depmap' needs both expression_path and model_path")
        for name in ("synthetic_samples", "synthetic_genes", "synthetic_tissues", "top_k_genes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail(f"{name}={value}; expected a positive integer or none")
        if self.synthetic_tissues is not None and not 2 <= self.synthetic_tissues <= 39:
            fail(f"synthetic_tissues={self.synthetic_tissues}; expected 2..39")
        if self.min_samples_per_tissue < 3:
            fail(f"min_samples_per_tissue={self.min_samples_per_tissue}; expected >= 3")
        if self.min_gene_variance < 0:
            fail(f"min_gene_variance={self.min_gene_variance}; expected >= 0")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                fail(f"{name}={value}; expected 0 < {name} < 1")
        if self.val_fraction + self.test_fraction >= 0.9:
            fail(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g}; "
                "expected < 0.9 so that training keeps most samples"
            )
        if self.n_folds < 0 or self.n_folds == 1:
            fail(f"n_folds={self.n_folds}; expected 0 (none) or >= 2")
        for name in ("synthetic_seed", "split_seed"):
            value = getattr(self, name)
            if not 0 <= value < SEED_LIMIT:
                fail(f"{name}={value}; expected an integer from 0 to 2**32 - 1 (the seeds numpy and scikit-learn take)")
        if self.source == "synthetic" and (self.synthetic_samples is not None or self.synthetic_tissues is not None):
            from data_pipeline.synthetic import SYNTHETIC_PRESETS

            preset = SYNTHETIC_PRESETS[self.preset]
            samples = self.synthetic_samples or preset.n_samples
            fewest = fewest_synthetic_samples(self)
            if fewest is not None and samples < fewest:
                setting = (f"synthetic_samples={samples}" if self.synthetic_samples else
                           f"synthetic_tissues={self.synthetic_tissues} (with the preset's {samples} samples)")
                fail(
                    f"{setting}; {self.synthetic_tissues or preset.n_tissues} tissues need at least {fewest} "
                    f"samples, so that two tissues keep min_samples_per_tissue={self.min_samples_per_tissue} "
                    "and every split holds each kept tissue"
                )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, where: str = "") -> DataConfig:
        """Build from a ``[data]`` table; unknown keys and wrong types raise :class:`DataError`.

        ``where`` (e.g. the study file path) prefixes every message.
        """
        prefix = f"{where}: " if where else ""
        if not isinstance(mapping, Mapping):
            raise DataError(f"{prefix}[data] must be a table, got {type(mapping).__name__}")
        hints = get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in known:
                raise DataError(
                    f"{prefix}[data] unknown key {key!r}; known keys: {', '.join(sorted(known))}"
                )
            values[key] = _coerce(key, value, hints[key], prefix)
        if "source" not in values and (values.get("expression_path") or values.get("model_path")):
            values["source"] = "depmap"  # giving the files is enough to choose them
        try:
            config = cls(**values)
        except DataError as error:
            if where and not str(error).startswith(prefix):
                raise DataError(f"{prefix}{error}") from None
            raise
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-friendly dict (``None`` values included)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> DataConfig:
        """A copy with some settings changed (validated)."""
        return dataclasses.replace(self, **changes)


def _coerce(key: str, value: Any, hint: Any, prefix: str) -> Any:
    """Check ``value`` against the field's type; ints are accepted for floats."""
    allowed = get_args(hint) if get_origin(hint) is Union or "|" in str(hint) else (hint,)
    allowed = tuple(a for a in allowed if a is not Any) or (hint,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is type(None):
            continue
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    names = " or ".join("none" if a is type(None) else a.__name__ for a in allowed)
    raise DataError(f"{prefix}[data] {key}={value!r} has type {type(value).__name__}; expected {names}")
