"""Time the data pipeline at full size: generate, load, prepare, cached load; check learnability.

Usage::

    python benchmarks/data_prepare.py                # full preset, ~1-2 minutes on 2 cores
    python benchmarks/data_prepare.py --preset small --skip-depmap-precision --skip-gzip

Prints a Markdown table (paste into benchmarks/RESULTS.md) with the machine it ran on.
Everything runs in a temporary directory; nothing is left behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As every script here: import the project from the repository root, never from this folder.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks._perf import machine as shared_machine
from data_pipeline import DataConfig, load_prepared, prepare_dataset
from data_pipeline.cache import read_meta, verify_entry
from data_pipeline.loader import read_expression
from data_pipeline.synthetic import generate_tables, spec_for, write_tables


def machine() -> str:
    return f"{shared_machine()}, pyarrow {pa.__version__}"


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def write_depmap_precision(expression: Path, out: Path, seed: int) -> Path:
    """Same matrix with full float32 precision (like DepMap's 6-decimal values): a realistic file size."""
    matrix = read_expression(expression)
    rng = np.random.default_rng(seed)
    values = matrix.values + (matrix.values > 0) * rng.uniform(0, 1e-3, matrix.values.shape).astype(np.float32)
    table = pa.table([pa.array(matrix.model_ids), *[pa.array(values[:, j]) for j in range(values.shape[1])]],
                     names=["", *matrix.gene_names])
    with open(out, "wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return out


def learnability(dataset: Any) -> list[tuple[str, float, float]]:
    """(model, val accuracy, test accuracy): majority class, a weak model, the default linear model."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    X_train, y_train = np.asarray(dataset.X_train), np.asarray(dataset.y_train)
    models = [
        ("majority class", DummyClassifier(strategy="most_frequent")),
        ("1-nearest neighbour", KNeighborsClassifier(n_neighbors=1)),
        ("LogisticRegression() (sklearn defaults)", LogisticRegression(max_iter=1000)),
    ]
    rows = []
    for name, model in models:
        model.fit(X_train, y_train)
        rows.append((name, model.score(dataset.X_val, dataset.y_val), model.score(dataset.X_test, dataset.y_test)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of the cached load")
    parser.add_argument("--skip-depmap-precision", action="store_true")
    parser.add_argument("--skip-gzip", action="store_true")
    parser.add_argument("--skip-learnability", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, str]] = []
    work = Path(tempfile.mkdtemp(prefix="hpo-data-bench-"))
    try:
        spec = spec_for(args.preset)
        seconds, tables = timed(lambda: generate_tables(spec))
        rows.append((f"generate values ({spec.n_samples} labelled x {spec.n_genes} genes, {spec.n_tissues} tissues)",
                     f"{seconds:.2f} s"))
        seconds, (expression, model) = timed(lambda: write_tables(tables, work / "files", "classic"))
        size = expression.stat().st_size / 1e6
        rows.append((f"write CSVs (expression {size:.0f} MB, pyarrow)", f"{seconds:.2f} s"))
        del tables

        seconds, matrix = timed(lambda: read_expression(expression))
        rows.append((f"read expression CSV ({size:.0f} MB -> {matrix.values.shape[0]} x {matrix.values.shape[1]} float32)",
                     f"{seconds:.2f} s"))
        del matrix

        config = DataConfig(source="depmap", expression_path=str(expression), model_path=str(model),
                            cache_dir=str(work / "cache"))
        seconds, dataset = timed(lambda: prepare_dataset(config))
        rows.append(("prepare, uncached (hash inputs + read + filter + split + z-score + write cache)",
                     f"{seconds:.2f} s"))
        cached = []
        for _ in range(args.repeat):
            seconds, _ = timed(lambda: prepare_dataset(config))
            cached.append(seconds)
        rows.append((f"prepare, cached (memory-mapped; median of {args.repeat})",
                     f"{statistics.median(cached) * 1000:.1f} ms"))
        directory = dataset.directory
        array_mb = sum(f.stat().st_size for f in directory.glob("*.npy")) / 1e6
        unverified = [timed(lambda: load_prepared(directory, verify=False))[0] for _ in range(args.repeat)]
        rows.append((f"  of which opening the memory maps and meta.json (`load_prepared(verify=False)`; median of {args.repeat})",
                     f"{statistics.median(unverified) * 1000:.1f} ms"))
        checks = [timed(lambda: verify_entry(directory, read_meta(directory)))[0] for _ in range(args.repeat)]
        rows.append((f"  of which the integrity check (SHA-256 of {array_mb:.0f} MB of arrays + meta.json entries; "
                     f"median of {args.repeat})", f"{statistics.median(checks) * 1000:.1f} ms"))
        fresh = DataConfig(preset=args.preset, cache_dir=str(work / "cache-synthetic"))
        seconds, _ = timed(lambda: prepare_dataset(fresh))
        rows.append(("prepare_dataset(DataConfig(preset=...)) from nothing (generate + write + read + prepare)",
                     f"{seconds:.2f} s"))

        if not args.skip_depmap_precision:
            precise = write_depmap_precision(expression, work / "precise.csv", seed=1)
            precise_size = precise.stat().st_size / 1e6
            seconds, _ = timed(lambda: read_expression(precise))
            rows.append((f"read expression CSV at DepMap precision ({precise_size:.0f} MB)", f"{seconds:.2f} s"))
            precise.unlink()
        if not args.skip_gzip:
            compressed = work / "expression.csv.gz"
            with open(expression, "rb") as source, gzip.open(compressed, "wb", compresslevel=1) as target:
                shutil.copyfileobj(source, target, 8 << 20)
            seconds, _ = timed(lambda: read_expression(compressed))
            rows.append((f"read gzip-compressed expression CSV ({compressed.stat().st_size / 1e6:.0f} MB)",
                         f"{seconds:.2f} s"))

        print(f"Machine: {machine()}\n")
        print(f"Prepared: {dataset.n_classes} tissues, {dataset.n_features} genes kept, "
              f"train/val/test {len(dataset.y_train)}/{len(dataset.y_val)}/{len(dataset.y_test)}\n")
        print("| step | time |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        if not args.skip_learnability:
            print("\n| model on the prepared data set | val accuracy | test accuracy |\n|---|---|---|")
            for name, val, test in learnability(dataset):
                print(f"| {name} | {val:.3f} | {test:.3f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
