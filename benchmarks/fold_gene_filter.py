"""What refitting the gene filter inside each CV fold costs at full size (``fidelity = "folds"``).

Usage::

    python benchmarks/fold_gene_filter.py              # full preset, top_k_genes=5000 (studies/svc.toml)
    python benchmarks/fold_gene_filter.py --preset tiny --top-k-genes 100

Prepares the data set in a temporary cache, then reports the size of the extra cached array
(``X_train_unfiltered``), what writing it adds to a prepare, and per fold the time and peak
Python-heap memory (tracemalloc, numpy included) of an SVC fold with the filter refitted on the
fold's rows against one on the prepared genes (the former, leaky, fold).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import statistics
import tempfile
import time
import tracemalloc

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from benchmarks._perf import machine
from data_pipeline import DataConfig, prepare_dataset
from data_pipeline.gene_filter import gene_filter_of
from data_pipeline.preprocess import select_genes
from models.fidelity import stratified_folds


def measured(fit) -> tuple[float, float]:
    """Seconds and peak traced MB of ``fit()``."""
    tracemalloc.start()
    started = time.perf_counter()
    fit()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--top-k-genes", type=int, default=5000)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        config = DataConfig(preset=args.preset, top_k_genes=args.top_k_genes, cache_dir=cache)
        started = time.perf_counter()
        data = prepare_dataset(config)
        prepare_seconds = time.perf_counter() - started
        entry_mb = sum(f.stat().st_size for f in data.directory.iterdir()) / 1e6
        extra_mb = (data.directory / "X_train_unfiltered.npy").stat().st_size / 1e6
        unfiltered = np.array(data.X_train_unfiltered)
        started = time.perf_counter()  # the extra prepare work: the variance pass, the copy and the write
        varying = select_genes(unfiltered, 0.0, None, source="benchmark")
        np.save(Path(cache) / "again.npy", np.ascontiguousarray(unfiltered[:, varying]))
        extra_seconds = time.perf_counter() - started

        y = np.asarray(data.y_train)
        X_prepared = np.asarray(data.X_train)
        rows = {"refit per fold": [], "prepared genes (leaky)": [], "filter fit alone": []}
        for fit_rows, _ in stratified_folds(y, args.folds):
            def per_fold() -> None:
                Pipeline([("filter_genes", gene_filter_of(data.settings)), ("standardise", StandardScaler()),
                          ("model", SVC())]).fit(unfiltered[fit_rows], y[fit_rows])

            def leaky() -> None:
                Pipeline([("standardise", StandardScaler()), ("model", SVC())]).fit(X_prepared[fit_rows], y[fit_rows])

            rows["refit per fold"].append(measured(per_fold))
            rows["prepared genes (leaky)"].append(measured(leaky))
            rows["filter fit alone"].append(measured(lambda: gene_filter_of(data.settings).fit(unfiltered[fit_rows])))

    print(f"machine: {machine()}")
    print(f"{args.preset} preset, top_k_genes={args.top_k_genes}: train {unfiltered.shape[0]} rows, "
          f"{data.n_features} prepared genes, X_train_unfiltered {unfiltered.shape[1]} genes")
    print(f"prepare (uncached) {prepare_seconds:.1f} s; cache entry {entry_mb:.1f} MB, of which "
          f"X_train_unfiltered {extra_mb:.1f} MB; its variance pass + copy + write {extra_seconds:.2f} s")
    print(f"\n| SVC fold ({args.folds} folds) | median s per fold | median peak MB |\n|---|---|---|")
    for name, values in rows.items():
        print(f"| {name} | {statistics.median(v[0] for v in values):.2f} | "
              f"{statistics.median(v[1] for v in values):.0f} |")


if __name__ == "__main__":
    main()
