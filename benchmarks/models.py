"""Epoch time of the deep models and fit time of the baselines at full size.

Run from the repository root (the venv active):

    nice python benchmarks/models.py                        # CPU, the data pipeline's `full` preset
    python benchmarks/models.py --device cuda --precision fp32 bf16   # on a GPU machine
    python benchmarks/models.py --synthetic-shape 1402 18292 39       # random arrays of that shape

Each deep model trains ``--epochs`` epochs (early stopping off) on the training split;
the first epoch is a warm-up and is not timed. Baselines are fitted once with their
defaults (fidelity "none"). Prints a Markdown table (and writes ``--json`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._perf import cpu_model  # noqa: E402
from data_pipeline import DataConfig, PreparedDataset, prepare_dataset  # noqa: E402
from models import build_model, estimate_memory  # noqa: E402

DEEP_MODELS = ("classifier", "autoencoder", "conv_classifier")
BASELINES = ("svc", "random_forest", "knn", "logistic_regression", "kpca_svc", "svc_on_embeddings")
BASELINE_PARAMS: dict[str, dict[str, Any]] = {"svc_on_embeddings": {"ae_max_epochs": 5}}


def synthetic_dataset(n_samples: int, n_genes: int, n_classes: int, seed: int = 0) -> PreparedDataset:
    """Random float32 arrays of the given shape (timings only: there is nothing to learn)."""
    rng = np.random.default_rng(seed)
    n_train, n_val = int(n_samples * 0.7), int(n_samples * 0.15)
    sizes = {"train": n_train, "val": n_val, "test": n_samples - n_train - n_val}
    arrays = {}
    for split, size in sizes.items():
        arrays[f"X_{split}"] = rng.standard_normal((size, n_genes), dtype=np.float32)
        arrays[f"y_{split}"] = rng.integers(0, n_classes, size).astype(np.int64)
        arrays[f"y_{split}"][:n_classes] = np.arange(min(size, n_classes))
    return PreparedDataset(
        **arrays,
        tissues=[f"tissue_{i}" for i in range(n_classes)],
        gene_names=[f"gene_{i}" for i in range(n_genes)],
        sample_ids={split: [] for split in sizes},
        fingerprint="random",
    )


def time_deep_model(name: str, data: PreparedDataset, *, device: str, precision: str, epochs: int) -> dict[str, Any]:
    stamps: list[float] = []
    params = {"max_epochs": epochs, "early_stopping_patience": 0, "precision": precision}
    model = build_model(name, params, device=device, seed=0)
    started = time.perf_counter()
    model.fit(data, on_step=lambda step, metrics: stamps.append(time.perf_counter()))
    epoch_seconds = np.diff([started, *stamps])[1:]  # epoch 1 is warm-up
    last = model.history_[-1]
    memory = estimate_memory(name, params, data.n_features, data.n_classes,
                             n_samples=len(data.y_train) + len(data.y_val))
    result = {
        "model": name,
        "precision": precision,
        "device": model.device_,
        "epoch_seconds": float(statistics.median(epoch_seconds)),
        "epochs_timed": len(epoch_seconds),
        "parameters": model.n_parameters_,
        "estimated_memory_mib": memory.total_bytes / 2**20,
        "val_metric": last.get("val_balanced_accuracy", last.get("val_reconstruction_mse")),
        "first_val_metric": model.history_[0].get(
            "val_balanced_accuracy", model.history_[0].get("val_reconstruction_mse")
        ),
    }
    if torch.cuda.is_available() and model.device_.startswith("cuda"):
        result["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    del model
    return result


def time_optimizer_steps(n_parameters: int, repeats: int = 10) -> list[dict[str, Any]]:
    """ms per AdamW step on one tensor of ``n_parameters``: for-loop (CPU default), foreach, fused."""
    parameter = torch.nn.Parameter(torch.randn(n_parameters))
    parameter.grad = torch.randn_like(parameter)
    results = []
    for label, options in (("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        optimizer = torch.optim.AdamW([parameter], lr=1e-3, **options)
        optimizer.step()  # allocate the state
        started = time.perf_counter()
        for _ in range(repeats):
            optimizer.step()
        results.append({"implementation": label, "ms_per_step": 1000 * (time.perf_counter() - started) / repeats})
    return results


def time_baseline(name: str, data: PreparedDataset, *, device: str, threads: int | None) -> dict[str, Any]:
    model = build_model(name, BASELINE_PARAMS.get(name), device=device, seed=0, num_threads=threads)
    started = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - started
    return {
        "model": name,
        "fit_seconds": seconds,
        "val_balanced_accuracy": model.evaluate(data, "val")["val_balanced_accuracy"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"))
    parser.add_argument("--epochs", type=int, default=4, help="epochs per deep model (first one untimed)")
    parser.add_argument("--models", nargs="+", default=list(DEEP_MODELS))
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument("--threads", type=int, default=None, help="torch/BLAS threads (default: all cores)")
    parser.add_argument("--preset", default="full", help="data pipeline preset (default full)")
    parser.add_argument("--cache-dir", default=None, help="data cache directory (default: the pipeline's)")
    parser.add_argument("--synthetic-shape", nargs=3, type=int, metavar=("SAMPLES", "GENES", "CLASSES"),
                        help="use random arrays of this shape instead of the data pipeline")
    parser.add_argument("--optimizer-parameters", type=int, default=8_400_000,
                        help="tensor size for the AdamW step timing (0 to skip; default: the classifier's size)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.synthetic_shape:
        data = synthetic_dataset(*args.synthetic_shape)
        source = f"random arrays {args.synthetic_shape}"
    else:
        config = DataConfig(preset=args.preset, **({"cache_dir": args.cache_dir} if args.cache_dir else {}))
        data = prepare_dataset(config)
        source = f"data pipeline preset {args.preset!r}"
    print(f"data: {source}: train {data.X_train.shape}, val {data.X_val.shape}, {data.n_classes} classes "
          f"(ready in {time.perf_counter() - started:.1f}s)")
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }
    print(f"machine: {machine}")

    deep = [
        time_deep_model(name, data, device=args.device, precision=precision, epochs=args.epochs)
        for name in args.models
        for precision in args.precision
    ]
    print("\n| model | precision | device | s/epoch (median) | parameters | est. memory MiB | first -> last val metric |")
    print("|---|---|---|---|---|---|---|")
    for r in deep:
        print(f"| {r['model']} | {r['precision']} | {r['device']} | {r['epoch_seconds']:.2f} | {r['parameters']:,} | "
              f"{r['estimated_memory_mib']:.0f} | {r['first_val_metric']:.3f} -> {r['val_metric']:.3f} |")

    optimizer_steps = time_optimizer_steps(args.optimizer_parameters) if args.optimizer_parameters else []
    if optimizer_steps:
        print(f"\n| AdamW step, {args.optimizer_parameters:,} parameters | ms/step |")
        print("|---|---|")
        for r in optimizer_steps:
            print(f"| {r['implementation']} | {r['ms_per_step']:.1f} |")

    baselines = [time_baseline(name, data, device=args.device, threads=args.threads) for name in args.baselines]
    if baselines:
        print("\n| baseline | fit s | val balanced accuracy |")
        print("|---|---|---|")
        for r in baselines:
            print(f"| {r['model']} | {r['fit_seconds']:.1f} | {r['val_balanced_accuracy']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"data": source, "machine": machine, "deep": deep, "baselines": baselines,
                                         "optimizer_steps": optimizer_steps},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
