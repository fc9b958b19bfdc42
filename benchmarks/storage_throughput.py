"""Storage throughput: trials/s of a trivial objective with 1, 2, 4, 8 worker processes on each storage.

``benchmarks/storage.py`` compares the embedded storages at one point (8 workers, plus a
dashboard-like reader); this script sweeps the worker count on every storage, PostgreSQL included,
through tissue-hpo's own worker loop (``hpo.worker.trial_loop``: admission lock, stale-trial check,
heartbeats, ask/tell), and times where each storage saturates. It then feeds the measured
per-trial database and lock times into a small simulation of one study shared by many hosts
(README, "Performance": how many workers one PostgreSQL holds).

Usage (repository root, venv active)::

    nice python benchmarks/storage_throughput.py                    # 4 storages x 1/2/4/8 workers
    python benchmarks/storage_throughput.py --trials 40 --workers 1 2 --storages default journal   # quick
    python benchmarks/storage_throughput.py --simulate-only --lock-ms 8 --db-ms 120 --trial-seconds 5 30

Storages:

* ``default``: tissue-hpo's default, ``hpo.storage.open_storage("sqlite:///...")`` (WAL, synchronous=NORMAL,
  busy timeout, heartbeats on);
* ``sqlite``: SQLite as Optuna opens it on its own (``RDBStorage("sqlite:///...")``: rollback journal,
  synchronous=FULL, no heartbeats);
* ``journal``: ``open_storage("journal:///...")``: Optuna's ``JournalStorage(JournalFileBackend)`` with
  tissue-hpo's heartbeats (``hpo.liveness``) and the admission lock in a file beside it;
* ``postgresql``: the real server (``--postgres-url``), through ``open_storage`` (heartbeats on);
* ``grpc``: Optuna's gRPC storage proxy as ``hpo proxy`` serves it (its own process, backed by the same
  PostgreSQL); workers use ``open_storage("grpc://...")`` (``GrpcStorageProxy`` with tissue-hpo's
  heartbeats) and keep the admission lock on PostgreSQL; needs grpcio (``.[grpc]``), skipped without it.

Every worker is a fresh process (spawn) that connects, waits at a barrier, then runs the loop with a
study-wide budget of ``--trials`` trials (``benchmarks/storage.py``'s cheap objective: two parameters,
three ``report`` calls, 15 ms of sleep standing in for training). Throughput = trials / time from the
barrier to the last worker's exit. Each point must end with exactly ``--trials`` complete trials, none
failed, running or waiting (checked and printed).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import heapq  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._perf import (  # noqa: E402
    DEFAULT_POSTGRES_URL,
    StorageTimer,
    conditions,
    drop_postgres_study,
    machine,
    median,
    postgres_reachable,
)

STORAGES = ("default", "sqlite", "journal", "postgresql", "grpc")
GRPC_PORT = 13517


def open_kind(kind: str, folder: Path, postgres_url: str) -> tuple[Any, str]:
    """The storage of ``kind`` and the URL its admission lock is keyed on."""
    import optuna

    from hpo.storage import open_storage

    if kind == "default":
        url = f"sqlite:///{folder / 'default.db'}"
        return open_storage(url), url
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'plain.db'}"
        return optuna.storages.RDBStorage(url), url
    if kind == "journal":  # as `--storage journal:///...` opens it: tissue-hpo's heartbeats, a file lock beside it
        url = f"journal:///{folder / 'journal.log'}"
        return open_storage(url), url
    if kind == "postgresql":
        return open_storage(postgres_url), postgres_url
    if kind == "grpc":
        # as `--storage grpc://...` with HPO_LOCK_URL=postgresql://...: the admission lock stays an advisory lock
        return open_storage(f"grpc://127.0.0.1:{GRPC_PORT}"), postgres_url
    raise ValueError(f"unknown storage {kind!r}; expected one of {STORAGES}")


def worker_process(kind: str, folder: str, postgres_url: str, name: str, total: int, index: int,
                   ready: Any, results: Any) -> None:
    import logging

    import optuna

    from benchmarks.storage import cheap_objective
    from hpo.run import AdmissionLock, TrialBudget, trial_loop

    logging.getLogger("hpo.worker").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # gRPC proxy, heartbeats
    timer = StorageTimer()
    holds: list[float] = []
    outcome: dict[str, Any] = {"errors": []}
    try:
        storage, lock_url = open_kind(kind, Path(folder), postgres_url)
        timer.instrument(storage)
        study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=index))
        lock = AdmissionLock(lock_url, name)
        original_hold = lock.hold

        @contextlib.contextmanager
        def timed_hold() -> Iterator[None]:
            with original_hold():
                acquired = time.perf_counter()  # hold time, not the wait for the lock
                yield
            holds.append(time.perf_counter() - acquired)

        lock.hold = timed_hold  # type: ignore[method-assign]
        ready.wait()
        report = trial_loop(study, cheap_objective, storage=storage, budget=TrialBudget(total, 10, None, time.monotonic()),
                            lock=lock, label=f"bench {index}", free_memory=False)
        lock.close()
        seconds, calls = timer.total()
        outcome.update(ran=report.ran, storage_seconds=seconds, storage_calls=calls, lock_holds=holds)
    except Exception as error:  # reported, and the point counts as failed
        outcome["errors"].append(f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
        with contextlib.suppress(Exception):
            ready.abort()
    results.put(outcome)


def grpc_proxy_server(postgres_url: str) -> None:
    """What `hpo proxy --storage URL` serves: Optuna's proxy over Optuna's cached RDB storage."""
    import optuna

    from hpo.storage import serve_proxy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    serve_proxy(postgres_url, host="127.0.0.1", port=GRPC_PORT)


def start_grpc_proxy(postgres_url: str) -> Any:
    import socket

    process = mp.get_context("spawn").Process(target=grpc_proxy_server, args=(postgres_url,), daemon=True)
    process.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", GRPC_PORT), timeout=1):
            return process
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the gRPC storage proxy did not start")


def grpc_available() -> bool:
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def run_point(kind: str, workers: int, total: int, root: Path, postgres_url: str) -> dict[str, Any]:

    folder = root / f"{kind}-{workers}"
    folder.mkdir(parents=True)
    name = f"throughput-{kind}-{workers}-{int(time.time())}"
    proxy = start_grpc_proxy(postgres_url) if kind == "grpc" else None
    try:
        return _run_point(kind, workers, total, folder, postgres_url, name)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.join()


def _run_point(kind: str, workers: int, total: int, folder: Path, postgres_url: str, name: str) -> dict[str, Any]:
    import optuna

    storage, _ = open_kind(kind, folder, postgres_url)
    optuna.create_study(study_name=name, storage=storage)
    context = mp.get_context("spawn")
    ready, results = context.Barrier(workers + 1), context.Queue()
    processes = [
        context.Process(target=worker_process, args=(kind, str(folder), postgres_url, name, total, i, ready, results))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        ready.wait(timeout=300)
    except Exception:
        pass
    started = time.perf_counter()
    outcomes = [results.get(timeout=900) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    if kind in ("postgresql", "grpc"):
        drop_postgres_study(postgres_url, name)
    ran = sum(o.get("ran", 0) for o in outcomes)
    holds = [h for o in outcomes for h in o.get("lock_holds", [])]
    return {
        "storage": kind,
        "workers": workers,
        "expected": total,
        "complete": states.count("COMPLETE"),
        "failed": states.count("FAIL"),
        "unfinished": states.count("RUNNING") + states.count("WAITING"),
        "errors": [e for o in outcomes for e in o["errors"]],
        "exit_codes": [p.exitcode for p in processes],
        "seconds": elapsed,
        "trials_per_s": states.count("COMPLETE") / elapsed,
        "storage_ms_per_trial": 1000 * sum(o.get("storage_seconds", 0.0) for o in outcomes) / max(ran, 1),
        "storage_calls_per_trial": sum(o.get("storage_calls", 0) for o in outcomes) / max(ran, 1),
        "lock_hold_ms_median": 1000 * median(holds) if holds else float("nan"),
    }


def admission_costs(url: str, *, history: int = 60, running: int = 32, repeats: int = 10) -> dict[str, float]:
    """The classifier study's admission section on ``url``, as a worker holds it: count trials + TPE ask.

    Measured with ``history`` finished trials in the study, then again with ``running`` more trials
    running (counting re-reads the unfinished ones), in milliseconds (medians of ``repeats``).
    """
    import optuna

    from benchmarks._perf import study_content
    from hpo.results import Counts
    from hpo.run import AdmissionLock
    from hpo.samplers import build_sampler
    from hpo.storage import open_storage
    from hpo.study._studyfile import parse_study

    spec = parse_study(study_content("classifier"))
    storage = open_storage(url, heartbeat_interval=None)
    name = f"admission-{int(time.time())}"
    rng = random.Random(0)
    optuna.create_study(study_name=name, storage=storage, direction=spec.direction)
    earlier = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    earlier.optimize(lambda trial: (spec.space.suggest(trial, spec.fixed), rng.random())[1], n_trials=history)
    sampler = build_sampler(spec.sampler.name, spec.sampler.options, spec.sampler.seed)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    lock = AdmissionLock(url, name)

    def section() -> tuple[float, Any]:
        with lock.hold():
            started = time.perf_counter()
            Counts.of(study)
            trial = study.ask()
            return time.perf_counter() - started, trial

    def measure() -> float:
        times = []
        for _ in range(repeats):
            seconds, trial = section()
            times.append(seconds)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return 1000 * median(times)

    idle = measure()
    held = [section()[1] for _ in range(running)]
    busy = measure()
    for trial in held:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    lock.close()
    if url.startswith("postgresql"):
        drop_postgres_study(url, name)
    return {"hold_ms": idle, "hold_ms_running": busy, "per_running_ms": max(0.0, (busy - idle) / running),
            "history": history, "running": running}


def connections_per_worker(url: str, trial_seconds: float = 1.5) -> int:
    """Peak PostgreSQL connections one tissue-hpo worker holds while it runs trials (heartbeats on)."""
    import threading

    import optuna
    import sqlalchemy

    from hpo.run import AdmissionLock, TrialBudget, trial_loop
    from hpo.storage import open_storage

    probe = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)

    def count() -> int:
        with probe.connect() as connection:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            return int(connection.execute(sqlalchemy.text(query)).scalar())

    baseline, peak, stop = count(), [0], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], count() - baseline)
            time.sleep(0.05)

    name = f"connections-{int(time.time())}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = open_storage(url, heartbeat_interval=1, grace_period=5)
    study = optuna.create_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    lock = AdmissionLock(url, name)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()

    def objective(trial: optuna.Trial) -> float:
        time.sleep(trial_seconds)  # long enough for a heartbeat from its thread
        return trial.suggest_float("x", 0, 1)

    trial_loop(study, objective, storage=storage, budget=TrialBudget(2, 10, None, time.monotonic()), lock=lock,
               free_memory=False)
    stop.set()
    poller.join()
    lock.close()
    storage.engine.dispose()
    probe.dispose()
    drop_postgres_study(url, name)
    return peak[0]


def saturation(rows: list[dict[str, Any]]) -> str:
    """The worker count after which more workers add < 10 % throughput."""
    rows = sorted(rows, key=lambda r: r["workers"])
    for previous, current in zip(rows, rows[1:]):
        if current["trials_per_s"] < 1.1 * previous["trials_per_s"]:
            return f"{previous['workers']} workers ({previous['trials_per_s']:.0f} trials/s)"
    return f"not within {rows[-1]['workers']} workers"


def simulate(workers: int, *, trial_s: float, lock_s: float, lock_per_running_s: float, db_s: float,
             db_servers: int, trials: int = 4000, seed: int = 0) -> float:
    """Trials/s of ``workers`` sharing one study: a serial admission section, a shared DB, then training.

    Each trial holds the study's admission lock for ``lock_s + lock_per_running_s * workers`` (counting
    trials re-reads the running ones), then needs ``db_s`` of one of ``db_servers`` database cores
    (all its storage calls lumped together: pessimistic), then trains for an exponential-ish time
    with mean ``trial_s`` (gamma, shape 4). Returns the completed-trial rate.
    """
    rng = random.Random(seed)
    ready = [(0.0, w) for w in range(workers)]
    heapq.heapify(ready)
    lock_free = 0.0
    db_free = [0.0] * db_servers
    hold = lock_s + lock_per_running_s * workers
    finished_at = 0.0
    for _ in range(trials):
        at, worker = heapq.heappop(ready)
        start = max(at, lock_free)
        lock_free = start + hold
        server = min(range(db_servers), key=db_free.__getitem__)
        db_start = max(lock_free, db_free[server])
        db_free[server] = db_start + db_s
        done = db_free[server] + rng.gammavariate(4.0, trial_s / 4.0)
        finished_at = max(finished_at, done)
        heapq.heappush(ready, (done, worker))
    return trials / finished_at


def scaling_table(args: argparse.Namespace) -> list[str]:
    lines = [
        f"Simulation: admission lock {args.lock_ms:.1f} ms + {args.lock_per_running_ms:.2f} ms per running trial, "
        f"{args.db_ms:.0f} ms of database work per trial on {args.db_servers} database cores.",
        "",
        "| trial length | workers | trials/s | efficiency (vs. no contention) |",
        "|---|---|---|---|",
    ]
    for trial_s in args.trial_seconds:
        for workers in args.sim_workers:
            rate = simulate(workers, trial_s=trial_s, lock_s=args.lock_ms / 1000,
                            lock_per_running_s=args.lock_per_running_ms / 1000, db_s=args.db_ms / 1000,
                            db_servers=args.db_servers)
            ideal = workers / (trial_s + (args.lock_ms + args.lock_per_running_ms * workers + args.db_ms) / 1000)
            lines.append(f"| {trial_s:g} s | {workers} | {rate:.1f} | {rate / ideal:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--storages", nargs="+", default=list(STORAGES), choices=STORAGES)
    parser.add_argument("--trials", type=int, default=100, help="study-wide trials per point (default 100)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--json", help="also write the results here")
    simulation = parser.add_argument_group("simulation of one study on many hosts")
    simulation.add_argument("--simulate-only", action="store_true", help="skip the measurements")
    simulation.add_argument("--lock-ms", type=float, help="admission-lock hold per trial (default: measured, PostgreSQL, 1 worker)")
    simulation.add_argument("--lock-per-running-ms", type=float, help="extra hold per running trial (default: fitted)")
    simulation.add_argument("--db-ms", type=float, default=158.0,
                            help="database time per real trial (benchmarks/overhead.py, PostgreSQL, unit trial: 158)")
    simulation.add_argument("--db-servers", type=int, default=8, help="database cores (default 8)")
    simulation.add_argument("--trial-seconds", type=float, nargs="+", default=[3.4, 30.0])
    simulation.add_argument("--sim-workers", type=int, nargs="+", default=[8, 32, 64, 128, 256, 512])
    args = parser.parse_args()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict[str, Any]] = []
    before = conditions()
    if not args.simulate_only:
        reachable = postgres_reachable(args.postgres_url)
        storages = [s for s in args.storages
                    if (s not in ("postgresql", "grpc") or reachable) and (s != "grpc" or grpc_available())]
        skipped = sorted(set(args.storages) - set(storages))
        if skipped:
            print(f"skipped (no PostgreSQL or no grpcio here): {', '.join(skipped)}", file=sys.stderr)
        root = Path(tempfile.mkdtemp(prefix="hpo-throughput-"))
        try:
            for kind in storages:
                for workers in args.workers:
                    rows.append(run_point(kind, workers, args.trials, root, args.postgres_url))
                    r = rows[-1]
                    print(f"  {kind} x{workers}: {r['trials_per_s']:.1f} trials/s, {r['complete']}/{r['expected']} complete, "
                          f"{r['failed']} failed, {r['unfinished']} unfinished {r['errors'][:1]}", file=sys.stderr)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    after = conditions()

    print(f"Machine: {machine()}")
    print(f"Before: {before}; after: {after}\n")
    if rows:
        print(f"{args.trials} trials per point (study-wide budget, tissue-hpo worker loop, cheap objective)\n")
        print("| storage | workers | trials/s | complete / expected | failed | unfinished | errors | "
              "storage ms / trial (calls) | admission-lock hold (median) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['storage']} | {r['workers']} | {r['trials_per_s']:.1f} | {r['complete']} / {r['expected']} | "
                  f"{r['failed']} | {r['unfinished']} | {len(r['errors'])} | {r['storage_ms_per_trial']:.1f} "
                  f"({r['storage_calls_per_trial']:.0f}) | {r['lock_hold_ms_median']:.1f} ms |")
        print("\n| storage | saturates at |\n|---|---|")
        for kind in dict.fromkeys(r["storage"] for r in rows):
            print(f"| {kind} | {saturation([r for r in rows if r['storage'] == kind])} |")
        for r in rows:
            for error in r["errors"][:2]:
                print(f"  {r['storage']} x{r['workers']}: {error}")
    costs: dict[str, float] = {}
    if (args.lock_ms is None or args.lock_per_running_ms is None) and postgres_reachable(args.postgres_url):
        costs = admission_costs(args.postgres_url)
        print(f"\nAdmission section of the classifier study on PostgreSQL (count trials + TPE ask, "
              f"{costs['history']} finished trials): {costs['hold_ms']:.1f} ms; with {costs['running']} more running: "
              f"{costs['hold_ms_running']:.1f} ms ({costs['per_running_ms']:.2f} ms per running trial)")
    if not args.simulate_only and postgres_reachable(args.postgres_url):
        costs["connections_per_worker"] = connections_per_worker(args.postgres_url)
        print(f"PostgreSQL connections one worker holds (peak, heartbeats on): {costs['connections_per_worker']}")
    if args.lock_ms is None:
        args.lock_ms = costs.get("hold_ms", 20.0)
    if args.lock_per_running_ms is None:
        args.lock_per_running_ms = costs.get("per_running_ms", 0.2)
    print()
    print("\n".join(scaling_table(args)))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "before": before, "after": after, "rows": rows, "admission": costs},
                                              indent=2, default=str))


if __name__ == "__main__":
    main()
