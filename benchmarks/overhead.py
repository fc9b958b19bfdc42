"""Framework overhead per trial: a classifier trial through the whole service vs the bare training loop.

Usage (repository root, venv active)::

    nice python benchmarks/overhead.py                    # SQLite (default storage) + PostgreSQL if reachable
    python benchmarks/overhead.py --epochs 4 --trials 2 --pairs 1 --top-k 500   # a quick check
    python benchmarks/overhead.py --profile overhead.prof.txt                    # + cProfile of one block

The unit trial is the classifier study (``studies/classifier.toml``: TPE, median pruner, its search
space) pinned to one mid-range point (``UNIT_TRIAL_PARAMS``) on the full preset with ``--top-k`` genes (5000, as the study file),
``--epochs`` epochs, early stopping off, so that every trial does the same work.

* **bare**: ``build_model`` + ``fit`` + ``evaluate("val")`` with the same parameters, seed and threads
  (the training loop and nothing else).
* **service**: ``hpo.worker.run_worker`` (the code ``hpo run`` / ``hpo worker`` runs) on a study that
  already holds ``--history`` finished trials (so TPE and the median pruner do their real work), with
  the unit parameters enqueued: admission lock, stale-trial check, ``ask`` (TPE), parameter
  suggestion, per-epoch ``report``/``should_prune``, user attributes, learning-curve and
  confusion-matrix artifacts, ``tell``, logging and the worker's garbage collection.
  Per-trial time = (end of the worker - start of its first trial) / trials, so the worker's
  one-time start-up (storage, cached data, study) is excluded here and reported separately.

Bare and service trials alternate (ABAB..., ``--pairs`` of ``--trials`` each) so that a drifting
machine hits both alike; the wall ratio is total service time / total bare time over the same number
of trials (and the median of the per-pair ratios). Identical trials vary by several per cent on a
2-core VM, so the script also accounts inside each service trial: framework time = the trial's wall
time minus the time in ``fit`` (without its per-epoch callbacks) and ``evaluate``; the accounted
ratio = (bare + framework) / bare is the target figure, the wall ratio its noisy cross-check. A fresh-process
worker start-up is timed too (imports, cached memory-mapped data set, storage + study).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import cProfile  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._perf import (  # noqa: E402
    DEFAULT_POSTGRES_URL,
    UNIT_TRIAL_PARAMS,
    StorageTimer,
    build_spec,
    conditions,
    drop_postgres_study,
    machine,
    median,
    postgres_reachable,
    study_content,
)
from hpo.storage._trial_writes import REPORT_FLUSH_S


def unit_spec(args: argparse.Namespace, work: Path) -> Any:
    content = study_content("classifier")
    content["name"] = "overhead"
    content["device"] = "cpu"
    content["n_trials"] = 1
    content["data"] = {"preset": args.preset, "top_k_genes": args.top_k, "cache_dir": args.cache_dir}
    content["fixed"] = {**content["fixed"], "max_epochs": args.epochs, "early_stopping_patience": 0}
    return build_spec(content, work / "overhead.toml")


def bare_trial(spec: Any, data: Any, threads: int) -> float:
    from models.registry import build_model

    started = time.perf_counter()
    model = build_model(spec.model, {**spec.fixed, **UNIT_TRIAL_PARAMS}, device="cpu", seed=spec.seed, num_threads=threads)
    model.fit(data)
    model.evaluate(data, "val")
    return time.perf_counter() - started


def add_history(spec: Any, storage: Any, name: str, n: int, epochs: int, fingerprint: str) -> None:
    """``n`` finished trials with random parameters and low learning curves (they never cause pruning)."""
    import optuna

    from hpo.run._setup import open_study

    open_study(spec, storage, study_name=name, data_fingerprint=fingerprint)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=1))

    def earlier_trial(trial: optuna.Trial) -> float:
        spec.space.suggest(trial, spec.fixed)
        for step in range(1, epochs + 1):
            trial.report(0.01 * step / epochs, step)
        return 0.02

    study.optimize(earlier_trial, n_trials=n)


class TrainingClock:
    """Seconds spent training inside service trials: ``fit`` minus its per-epoch callbacks, plus ``evaluate``.

    Installed around ``TorchModel.fit``/``evaluate`` and the objective's step callback (benchmark only).
    What a service trial spends beyond this is the framework's time, measured inside the same trial, so
    the trial-to-trial noise of training (several % on this machine) does not enter it.
    """

    def __init__(self) -> None:
        self.fit = self.callbacks = self.evaluate = 0.0
        self.active = False

    def reset(self, active: bool) -> None:
        self.fit = self.callbacks = self.evaluate = 0.0
        self.active = active

    @property
    def training(self) -> float:
        return self.fit - self.callbacks + self.evaluate

    def install(self) -> None:
        import functools

        from hpo.run import _objective as objective_module
        from models.torch_model import TorchModel

        clock = self

        def timed(method: Any, field: str) -> Any:
            @functools.wraps(method)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    if clock.active:
                        setattr(clock, field, getattr(clock, field) + time.perf_counter() - started)

            return wrapper

        TorchModel.fit = timed(TorchModel.fit, "fit")
        TorchModel.evaluate = timed(TorchModel.evaluate, "evaluate")
        original_reporter = objective_module._reporter
        objective_module._reporter = lambda *a, **k: timed(original_reporter(*a, **k), "callbacks")


CLOCK = TrainingClock()


@dataclasses.dataclass
class ServiceBlock:
    per_trial: float
    framework: float
    """Seconds per trial not spent training (cycle minus CLOCK.training)."""
    startup: float
    train_seconds: float
    storage_seconds: float
    storage_calls: int
    complete: int


def service_block(spec: Any, url: str, name: str, n: int, threads: int, timer: StorageTimer,
                  profiler: cProfile.Profile | None = None) -> ServiceBlock:
    import optuna
    from optuna.trial import TrialState

    from hpo.run import run_worker
    from hpo.storage import open_storage

    storage = open_storage(url, heartbeat_interval=None)
    study = optuna.load_study(study_name=name, storage=storage)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))
    before = len(study.get_trials(deepcopy=False))
    for _ in range(n):
        study.enqueue_trial(UNIT_TRIAL_PARAMS)
    block_spec = dataclasses.replace(spec, n_trials=finished + n)
    timer.reset()
    CLOCK.reset(active=True)
    started = time.time()
    if profiler is not None:
        profiler.enable()
    report = run_worker(block_spec, storage_url=url, study_name=name, worker_index=0, num_threads=threads)
    if profiler is not None:
        profiler.disable()
    ended = time.time()
    CLOCK.active = False
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)[before:]
    first_start = min(t.datetime_start.timestamp() for t in trials)
    seconds, calls = timer.total()
    return ServiceBlock(
        per_trial=(ended - first_start) / n,
        framework=(ended - first_start - CLOCK.training) / n,
        startup=first_start - started,
        train_seconds=sum(t.user_attrs.get("train_seconds", 0.0) for t in trials) / n,
        storage_seconds=seconds / n,
        storage_calls=round(calls / n),
        complete=report.complete,
    )


def storage_breakdown(spec: Any, url: str, name: str, n: int, threads: int, timer: StorageTimer) -> dict[str, float]:
    """Storage milliseconds per trial by method (and ``calls``), a worker's start-up subtracted.

    One worker runs ``n`` trials; another starts and finds nothing to do (its start-up alone).
    """
    import optuna
    from optuna.trial import TrialState

    from hpo.run import run_worker

    study = optuna.load_study(study_name=name, storage=url)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))
    timer.reset()
    run_worker(dataclasses.replace(spec, n_trials=finished), storage_url=url, study_name=name, worker_index=0,
               num_threads=threads)
    startup_seconds, startup_calls = dict(timer.seconds), dict(timer.calls)
    service_block(spec, url, name, n, threads, timer)
    skip = ("record_heartbeat",)  # beats run beside the trial, not in its path
    per_trial = {k: 1000 * (v - startup_seconds.get(k, 0.0)) / n for k, v in timer.seconds.items() if k not in skip}
    per_trial = dict(sorted(((k, max(0.0, v)) for k, v in per_trial.items()), key=lambda kv: -kv[1]))
    per_trial["calls"] = round(sum(v - startup_calls.get(k, 0) for k, v in timer.calls.items() if k not in skip) / n)
    return per_trial


WORKER_STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import optuna
from hpo.worker import run_worker
from data_pipeline import DataConfig, prepare_dataset
t2 = time.perf_counter()
config = DataConfig(**json.loads(sys.argv[1]))
data = prepare_dataset(config)
t3 = time.perf_counter()
total = float(data.X_train.sum()) + float(data.X_val.sum())
t4 = time.perf_counter()
from hpo.storage import open_storage
storage = open_storage(sys.argv[2])
study = optuna.load_study(study_name=sys.argv[3], storage=storage)
t5 = time.perf_counter()
print(json.dumps({"import torch": t1 - t0, "import optuna + hpo": t2 - t1, "cached data set (memory map)": t3 - t2,
                  "first read of every training/validation value": t4 - t3, "open storage + study": t5 - t4}))
"""


def worker_startup(spec: Any, url: str, name: str, repeat: int) -> dict[str, float]:
    """A fresh worker process's start-up, step by step (median of ``repeat``)."""
    config = {k: v for k, v in spec.data.to_dict().items() if v is not None} if hasattr(spec.data, "to_dict") else {}
    runs: list[dict[str, float]] = []
    wall: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        output = subprocess.run(
            [sys.executable, "-c", WORKER_STARTUP, json.dumps(config), url, name],
            capture_output=True, text=True, check=True, cwd=str(_HERE.parent),
        ).stdout
        wall.append(time.perf_counter() - started)
        runs.append(json.loads(output.strip().splitlines()[-1]))
    steps = {key: median(run[key] for run in runs) for key in runs[0]}
    steps["whole process (python start to study open)"] = median(wall)
    return steps


@contextlib.contextmanager
def per_call_writes() -> Iterator[None]:
    """hpo.trial_writes off: every attribute and report in a transaction of its own, as Optuna does it."""
    from hpo.storage import _trial_writes as trial_writes

    original = trial_writes.rdb_backend
    trial_writes.rdb_backend = lambda trial: None
    try:
        yield
    finally:
        trial_writes.rdb_backend = original


def instrument_batched_writes(timer: StorageTimer) -> None:
    """Count hpo.trial_writes' batched writes as storage time (they bypass the storage's public methods)."""
    from hpo.run import _objective as objective
    from hpo.run import _worker as worker
    from hpo.storage import _trial_writes as trial_writes

    batched = timer._wrap("set_user_attrs", trial_writes.set_user_attrs)
    objective.set_user_attrs = worker.set_user_attrs = batched
    trial_writes.insert_intermediate_values = timer._wrap("buffered reports", trial_writes.insert_intermediate_values)


def measure_storage(label: str, url: str, spec: Any, data: Any, args: argparse.Namespace,
                    timer: StorageTimer, profiler: cProfile.Profile | None) -> dict[str, Any]:
    from hpo.storage import open_storage

    name = f"overhead-{os.getpid()}-{label}"
    storage = open_storage(url, heartbeat_interval=None)
    add_history(spec, storage, name, args.history, args.epochs, data.fingerprint)
    bare: list[float] = []
    blocks: list[ServiceBlock] = []
    per_call: list[ServiceBlock] = []
    for _ in range(args.pairs):  # bare, service, bare, service, ...: drift in the machine hits both alike
        bare += [bare_trial(spec, data, args.threads) for _ in range(args.trials)]
        blocks.append(service_block(spec, url, name, args.trials, args.threads, timer))
        if args.compare_writes:  # the same service with Optuna's one-transaction-per-write path
            with per_call_writes():
                per_call.append(service_block(spec, url, name, args.trials, args.threads, timer))
    breakdown = storage_breakdown(spec, url, name, args.breakdown_trials, args.threads, timer)
    if profiler is not None:
        service_block(spec, url, name, args.trials, args.threads, timer, profiler)
    startup = worker_startup(spec, url, name, args.startup_repeat) if args.startup_repeat else {}
    if url.startswith("postgresql"):
        drop_postgres_study(url, name)
    service = [b.per_trial for b in blocks]
    pair_ratios = [s / b for s, b in zip(service, [sum(bare[i:i + args.trials]) / args.trials
                                                     for i in range(0, len(bare), args.trials)])]
    return {
        "storage": label,
        "bare_trial_s": sum(bare) / len(bare),
        "bare_trial_median_s": median(bare),
        "service_trial_s": sum(service) / len(service),
        "ratio": sum(service) / len(service) / (sum(bare) / len(bare)),
        "pair_ratio_median": median(pair_ratios),
        "framework_s": sum(b.framework for b in blocks) / len(blocks),
        "accounted_ratio": 1 + sum(b.framework for b in blocks) / len(blocks) / (sum(bare) / len(bare)),
        "bare_trials_s": bare,
        "service_trials_s": service,
        "train_in_service_s": sum(b.train_seconds for b in blocks) / len(blocks),
        "storage_calls_per_trial": breakdown.pop("calls", 0),
        "storage_s_per_trial": sum(breakdown.values()) / 1000,
        "in_process_worker_startup_s": median(b.startup for b in blocks),
        "complete": sum(b.complete for b in blocks),
        "trials": args.trials * args.pairs,
        "storage_by_method_ms": breakdown,
        "per_call_framework_s": sum(b.framework for b in per_call) / len(per_call) if per_call else None,
        "per_call_accounted_ratio": (1 + sum(b.framework for b in per_call) / len(per_call) / (sum(bare) / len(bare))
                                     if per_call else None),
        "per_call_storage_s": sum(b.storage_seconds for b in per_call) / len(per_call) if per_call else None,
        "batched_storage_s": sum(b.storage_seconds for b in blocks) / len(blocks),
        "fresh_worker_startup": startup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--top-k", type=int, default=5000, help="top_k_genes of the data set (default 5000, as the study file)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per trial (default 20: ~3 s on 2 cores)")
    parser.add_argument("--trials", type=int, default=1, help="trials per block (default 1: strict alternation)")
    parser.add_argument("--pairs", type=int, default=8, help="bare/service block pairs (default 8)")
    parser.add_argument("--breakdown-trials", type=int, default=3,
                        help="trials of the extra block that splits storage time by method (default 3)")
    parser.add_argument("--history", type=int, default=30, help="finished trials already in the study (default 30)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    parser.add_argument("--cache-dir", default=str(_HERE.parent / "hpo-runs" / "cache"), help="data cache")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--startup-repeat", type=int, default=3, help="fresh worker processes timed (0: skip)")
    parser.add_argument("--profile", help="cProfile one extra service block per storage; top functions to this file")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--compare-writes", action="store_true",
                        help="also run every service block with Optuna's per-call writes (hpo.trial_writes off)")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING)
    import optuna

    from data_pipeline import prepare_dataset
    from hpo.run import _worker as worker_module

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    timer = StorageTimer()
    CLOCK.install()
    original_open = worker_module.open_storage
    worker_module.open_storage = lambda *a, **k: timer.instrument(original_open(*a, **k))
    instrument_batched_writes(timer)

    work = Path(tempfile.mkdtemp(prefix="hpo-overhead-"))
    os.environ["HPO_ARTIFACTS"] = str(work / "artifacts")
    before = conditions()
    try:
        spec = unit_spec(args, work)
        data = prepare_dataset(spec.data)
        bare_trial(spec, data, args.threads)  # warm-up: first-use allocations, lazy imports
        storages = [("SQLite (default, WAL)", f"sqlite:///{work / 'optuna.db'}")]
        if not args.no_postgres and postgres_reachable(args.postgres_url):
            storages.append(("PostgreSQL", args.postgres_url))
        profiler = cProfile.Profile() if args.profile else None
        results = [measure_storage(label.split()[0].lower(), url, spec, data, args, timer, profiler)
                   for label, url in storages]
        for result, (label, _) in zip(results, storages):
            result["storage"] = label
    finally:
        shutil.rmtree(work, ignore_errors=True)
    after = conditions()

    print(f"Machine: {machine()}")
    print(f"Before: {before}; after: {after}")
    print(f"Unit trial: classifier, {args.preset} preset, top_k_genes={args.top_k} ({data.n_features} genes x "
          f"{len(data.y_train)} training rows, {data.n_classes} tissues), {args.epochs} epochs, {args.threads} thread(s), "
          f"{args.trials} trials x {args.pairs} pairs of blocks per storage, {args.history} earlier trials in the study\n")
    print("| storage | bare trial | trial through the service | wall ratio (mean; median of pairs) | "
          "framework time inside the service trial | accounted ratio (bare + framework) / bare | "
          "of which storage (calls) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['storage']} | {r['bare_trial_s']:.3f} s | {r['service_trial_s']:.3f} s | "
              f"{r['ratio']:.3f}; {r['pair_ratio_median']:.3f} | {r['framework_s'] * 1000:.0f} ms | "
              f"**{r['accounted_ratio']:.3f}** | {r['storage_s_per_trial'] * 1000:.0f} ms ({r['storage_calls_per_trial']}) |")
    if args.compare_writes:
        print("\nSame run, same bare trials: the service with hpo.trial_writes (batched attributes, reports buffered "
              f"for {REPORT_FLUSH_S:g} s) against Optuna's one transaction per write (alternating blocks)\n")
        print("| storage | framework per trial: batched | per-call | accounted ratio: batched | per-call | "
              "storage per block incl. worker start-up: batched | per-call |\n|---|---|---|---|---|---|---|")
        for r in results:
            print(f"| {r['storage']} | {r['framework_s'] * 1000:.0f} ms | {r['per_call_framework_s'] * 1000:.0f} ms | "
                  f"**{r['accounted_ratio']:.3f}** | {r['per_call_accounted_ratio']:.3f} | "
                  f"{r['batched_storage_s'] * 1000:.0f} ms | {r['per_call_storage_s'] * 1000:.0f} ms |")
    for r in results:
        top = ", ".join(f"{name} {ms:.1f} ms" for name, ms in list(r["storage_by_method_ms"].items())[:7])
        print(f"\n{r['storage']}: {r['complete']}/{r['trials']} trials complete; worker start-up in process "
              f"{r['in_process_worker_startup_s']:.2f} s; storage time per trial by method: {top}")
        if r["fresh_worker_startup"]:
            print("\n| fresh worker process, start-up step | time |\n|---|---|")
            for step, seconds in r["fresh_worker_startup"].items():
                print(f"| {step} | {seconds * 1000:.0f} ms |")
    if profiler is not None:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(80)
        Path(args.profile).write_text(stream.getvalue())
        profiler.dump_stats(f"{args.profile}.pstats")  # for snakeviz / pstats
        print(f"\nprofile of one service block per storage: {args.profile}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "before": before, "after": after,
                                               "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
