"""GPU: epoch times at full size (fp32 vs bf16, batch sweep), workers sharing one GPU, utilisation in a study.

Run on a machine with a CUDA GPU (never in CI), repository root, venv with a CUDA build of torch::

    python benchmarks/gpu.py                              # all three parts, ~3-5 minutes on one GPU
    python benchmarks/gpu.py --parts epochs --batch-sizes 64 256 1024
    python benchmarks/gpu.py --device cpu --preset tiny --parts epochs sharing --epochs 2   # smoke test, no GPU

Parts:

* ``epochs``: the classifier and the autoencoder (their defaults, early stopping off) on the full data
  set, which ``TorchModel.fit`` keeps resident on the device; median epoch time after a warm-up epoch,
  for each precision and batch size. The work per epoch is counted (6 x weights of every Linear layer x
  training rows, + 2 x weights x validation rows) and divided by the epoch time, then compared with the
  attainable peak measured by a large matmul in the same precision (and the nominal peak for known cards).
  A step time that does not grow with the batch size means the epoch is bound by per-step latency
  (kernel launches, Python, the optimizer), not by arithmetic.
* ``sharing``: K processes each train the classifier on the same GPU at once; aggregate training rows/s
  against one process (the case for several workers per GPU).
* ``study``: ``hpo run``'s launcher on ``studies/classifier.toml`` (``--study-trials`` trials) with 1 and
  2 workers on the GPU while ``nvidia-smi`` samples utilisation every 200 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._perf import build_spec, conditions, machine, study_content  # noqa: E402

# Dense (non-sparse) tensor-core peaks in TFLOP/s from the vendors' data sheets; fp32 = without TF32.
NOMINAL_PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100 SXM": {"fp32": 67.0, "bf16": 989.0},
    "H100 PCIe": {"fp32": 51.0, "bf16": 756.0},
    "H100": {"fp32": 67.0, "bf16": 989.0},
    "H200": {"fp32": 67.0, "bf16": 989.0},
    "A100": {"fp32": 19.5, "bf16": 312.0},
    "L4": {"fp32": 30.3, "bf16": 121.0},
}


def nominal_peak(device_name: str, precision: str) -> float | None:
    for key in sorted(NOMINAL_PEAK_TFLOPS, key=len, reverse=True):
        if key in device_name:
            return NOMINAL_PEAK_TFLOPS[key][precision]
    return None


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, precision: str, size: int = 8192, repeats: int = 20) -> float:
    """Attainable TFLOP/s: a large square matmul in ``precision`` (TF32 off for fp32)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if not device.startswith("cuda"):
        size, repeats = 1024, 5
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


def linear_weights(network: Any) -> int:
    from torch import nn

    return sum(m.weight.numel() for m in network.modules() if isinstance(m, nn.Linear))


def time_epochs(name: str, data: Any, *, device: str, precision: str, batch_size: int, epochs: int) -> dict[str, Any]:
    from models.registry import build_model

    stamps: list[float] = []
    params = {"max_epochs": epochs, "early_stopping_patience": 0, "precision": precision, "batch_size": batch_size}
    model = build_model(name, params, device=device, seed=0)
    started = time.perf_counter()
    model.fit(data, on_step=lambda step, metrics: (synchronize(device), stamps.append(time.perf_counter())))
    seconds = statistics.median([b - a for a, b in zip([started, *stamps], stamps)][1:])  # epoch 1: warm-up
    n_train, n_val = len(data.y_train), len(data.y_val)
    weights = linear_weights(model.network_)
    flops = 6 * weights * n_train + 2 * weights * n_val
    steps = -(-n_train // batch_size)
    return {"model": name, "precision": precision, "batch_size": batch_size, "epoch_s": seconds,
            "step_ms": 1000 * seconds / steps, "rows_per_s": n_train / seconds, "tflops": flops / seconds / 1e12}


def sharing_worker(device: str, preset: str, cache_dir: str, epochs: int, ready: Any, results: Any) -> None:
    from data_pipeline import DataConfig, prepare_dataset
    from models.registry import build_model

    data = prepare_dataset(DataConfig(preset=preset, cache_dir=cache_dir))
    build_model("classifier", {"max_epochs": 1, "early_stopping_patience": 0}, device=device).fit(data)  # warm-up
    ready.wait()
    started = time.perf_counter()
    build_model("classifier", {"max_epochs": epochs, "early_stopping_patience": 0}, device=device, seed=1).fit(data)
    results.put((started, time.perf_counter(), epochs * len(data.y_train)))


def sharing(device: str, preset: str, cache_dir: str, epochs: int, counts: list[int]) -> list[dict[str, Any]]:
    context = mp.get_context("spawn")
    rows = []
    for k in counts:
        ready, results = context.Barrier(k), context.Queue()
        processes = [context.Process(target=sharing_worker, args=(device, preset, cache_dir, epochs, ready, results))
                     for _ in range(k)]
        for process in processes:
            process.start()
        spans = [results.get(timeout=900) for _ in processes]
        for process in processes:
            process.join()
        window = max(s[1] for s in spans) - min(s[0] for s in spans)
        rows.append({"processes": k, "rows_per_s": sum(s[2] for s in spans) / window, "window_s": window})
    return rows


def utilisation_during_study(args: argparse.Namespace, workers: int, work: Path) -> dict[str, Any]:
    from hpo.run import launch

    content = study_content("classifier")
    content.update(name=f"gpu-study-{workers}", n_trials=args.study_trials, device=args.device,
                   data={"preset": args.preset, "top_k_genes": 5000, "cache_dir": args.cache_dir})
    path = work / f"gpu-study-{workers}.toml"
    build_spec(content, path)
    samples: list[tuple[float, float]] = []
    sampler = None
    if shutil.which("nvidia-smi"):
        sampler = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=subprocess.PIPE, text=True,
        )
    started = time.perf_counter()
    result = launch(path, workers=workers, storage_url=f"sqlite:///{work / 'gpu.db'}", poll_seconds=0.5)
    wall = time.perf_counter() - started
    if sampler is not None:
        sampler.terminate()
        output, _ = sampler.communicate()
        for line in output.splitlines():
            try:
                util, memory = (float(x) for x in line.split(",")[:2])
                samples.append((util, memory))
            except ValueError:
                continue
    utils = [s[0] for s in samples]
    return {
        "workers": workers, "wall_s": wall, "finished": result.progress.counts.finished,
        "trials_per_min": 60 * result.progress.counts.finished / wall,
        "gpu_util_mean": statistics.mean(utils) if utils else None,
        "gpu_util_median": statistics.median(utils) if utils else None,
        "gpu_memory_mib_max": max((s[1] for s in samples), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--parts", nargs="+", default=["epochs", "sharing", "study"], choices=("epochs", "sharing", "study"))
    parser.add_argument("--models", nargs="+", default=["classifier", "autoencoder"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timing (first one untimed)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], help="sharing: processes per GPU")
    parser.add_argument("--study-trials", type=int, default=12)
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--cache-dir", default=str(_HERE.parent / "hpo-runs" / "cache"))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from data_pipeline import DataConfig, prepare_dataset

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here: run on a GPU machine, or --device cpu for a smoke test")
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    data = prepare_dataset(DataConfig(preset=args.preset, cache_dir=args.cache_dir))
    before = conditions()
    out: dict[str, Any] = {"machine": machine(), "device": device_name}
    print(f"Machine: {machine()}\nDevice: {device_name}; data: {args.preset} preset, train {data.X_train.shape}, "
          f"{data.n_classes} tissues\n")

    if "epochs" in args.parts:
        peaks = {p: matmul_peak(args.device, p) for p in args.precisions}
        rows = [time_epochs(m, data, device=args.device, precision=p, batch_size=b, epochs=args.epochs)
                for m in args.models for p in args.precisions for b in args.batch_sizes]
        out.update(matmul_peak_tflops=peaks, epochs=rows)
        print("Attainable peak (large square matmul): " + ", ".join(f"{p} {v:.1f} TFLOP/s" for p, v in peaks.items()))
        print("\n| model | precision | batch | epoch | step | training rows/s | TFLOP/s | of matmul peak | of nominal peak |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            nominal = nominal_peak(device_name, r["precision"])
            of_nominal = f"{r['tflops'] / nominal:.2%}" if nominal else "n/a"
            print(f"| {r['model']} | {r['precision']} | {r['batch_size']} | {r['epoch_s'] * 1000:.1f} ms | "
                  f"{r['step_ms']:.2f} ms | {r['rows_per_s']:,.0f} | {r['tflops']:.2f} | "
                  f"{r['tflops'] / peaks[r['precision']]:.1%} | {of_nominal} |")
    if "sharing" in args.parts:
        rows = sharing(args.device, args.preset, args.cache_dir, args.epochs, args.processes)
        out["sharing"] = rows
        print("\n| classifier processes on one device | aggregate training rows/s | vs 1 process |\n|---|---|---|")
        for r in rows:
            print(f"| {r['processes']} | {r['rows_per_s']:,.0f} | {r['rows_per_s'] / rows[0]['rows_per_s']:.2f} |")
    if "study" in args.parts:
        work = Path(tempfile.mkdtemp(prefix="hpo-gpu-"))
        os.environ["HPO_ARTIFACTS"] = str(work / "artifacts")
        try:
            rows = [utilisation_during_study(args, k, work) for k in (1, 2)]
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out["study"] = rows
        print("\n| workers on the GPU | trials | trials/min | GPU utilisation mean / median | max GPU memory |")
        print("|---|---|---|---|---|")
        for r in rows:
            util = f"{r['gpu_util_mean']:.0f} % / {r['gpu_util_median']:.0f} %" if r["gpu_util_mean"] is not None else "n/a"
            memory = f"{r['gpu_memory_mib_max']:.0f} MiB" if r["gpu_memory_mib_max"] is not None else "n/a"
            print(f"| {r['workers']} | {r['finished']} | {r['trials_per_min']:.1f} | {util} | {memory} |")
    out.update(before=before, after=conditions())
    print(f"\nBefore: {before}; after: {out['after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
