"""Which embedded storage should local workers share? Measured, not guessed.

Eight worker processes write one study at once while a reader polls it the way
optuna-dashboard does. Candidates:

* ``sqlite-wal``: tissue-hpo's default (``hpo.storage.open_storage``): SQLite in WAL mode (synchronous=NORMAL),
  120 s busy timeout, heartbeats on.
* ``sqlite-plain``: SQLite as Optuna opens it by default (rollback journal, 5 s timeout).
* ``journal``: Optuna's ``JournalStorage(JournalFileBackend)`` (append-only file, file lock).

Each worker runs ``study.optimize`` with a cheap objective (a few ms of "training" with
three ``trial.report`` calls), ``--trials`` trials per worker; a crashed worker's
remaining trials count as lost. Then the project's own worker loop (admission lock,
heartbeats) runs on ``sqlite-wal`` with a study-wide budget, to check it ends with
exactly that many trials. Finally the ``optuna`` CLI must read each store back.

    python benchmarks/storage.py                 # 8 workers x 40 trials
    python benchmarks/storage.py --workers 8 --trials 60 --out /tmp/storage-bench
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._perf import machine  # noqa: E402

BACKENDS = ("sqlite-wal", "sqlite-plain", "journal")
WORK_SECONDS = 0.005


def open_backend(kind: str, folder: Path, heartbeat: bool = False) -> optuna.storages.BaseStorage:
    if kind == "sqlite-wal":
        from hpo.storage import open_storage

        return open_storage(
            f"sqlite:///{folder / 'wal.db'}", heartbeat_interval=2 if heartbeat else None, grace_period=10
        )
    if kind == "sqlite-plain":
        return optuna.storages.RDBStorage(f"sqlite:///{folder / 'plain.db'}")
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    raise ValueError(kind)


def cheap_objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    y = trial.suggest_int("y", 0, 10)
    for step in range(3):
        time.sleep(WORK_SECONDS)
        trial.report((x - 1) ** 2 + y + 1.0 / (step + 1), step)
    return (x - 1) ** 2 + y


def optimize_worker(kind: str, folder: str, name: str, n_trials: int, queue: mp.Queue, ready: mp.Barrier) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    errors: list[str] = []
    try:
        study = optuna.load_study(study_name=name, storage=open_backend(kind, Path(folder)))
        ready.wait()
        study.optimize(cheap_objective, n_trials=n_trials)
    except Exception as error:  # e.g. sqlite3.OperationalError: database is locked
        errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
    queue.put(errors)


def project_worker(folder: str, name: str, n_total: int, index: int, queue: mp.Queue, ready: mp.Barrier) -> None:
    """tissue-hpo's worker loop: admission lock + heartbeats, budget n_total for the whole study."""
    from hpo.run import AdmissionLock, TrialBudget, trial_loop

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    errors: list[str] = []
    try:
        storage = open_backend("sqlite-wal", Path(folder), heartbeat=True)
        study = optuna.load_study(study_name=name, storage=storage)
        lock = AdmissionLock(f"sqlite:///{Path(folder) / 'wal.db'}", name)
        ready.wait()
        trial_loop(
            study, cheap_objective, storage=storage, budget=TrialBudget(n_total, 10, None, time.monotonic()),
            lock=lock, label=f"bench {index}", free_memory=False,
        )
    except Exception as error:
        errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
        traceback.print_exc()
    queue.put(errors)


def dashboard_like_reader(kind: str, folder: str, name: str, stop: mp.Event, queue: mp.Queue) -> None:
    """Poll summaries and trials as optuna-dashboard does while the workers write."""
    reads, errors = 0, []
    storage = open_backend(kind, Path(folder))
    while not stop.is_set():
        try:
            optuna.get_all_study_summaries(storage)
            optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
            reads += 1
        except Exception as error:
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
        time.sleep(0.1)
    queue.put((reads, errors))


def run_case(kind: str, workers: int, trials: int, folder: Path, project_loop: bool = False) -> dict:
    name = f"bench-{kind}{'-loop' if project_loop else ''}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name=name, storage=open_backend(kind, folder))
    context = mp.get_context("spawn")
    queue, reader_queue, stop = context.Queue(), context.Queue(), context.Event()
    ready = context.Barrier(workers + 1)  # the clock starts when every worker has imported and connected
    reader = context.Process(target=dashboard_like_reader, args=(kind, str(folder), name, stop, reader_queue))
    reader.start()
    total = workers * trials
    if project_loop:
        targets = [(project_worker, (str(folder), name, total, i, queue, ready)) for i in range(workers)]
    else:
        targets = [(optimize_worker, (kind, str(folder), name, trials, queue, ready)) for _ in range(workers)]
    processes = [context.Process(target=target, args=args) for target, args in targets]
    for process in processes:
        process.start()
    ready.wait()
    started = time.perf_counter()
    errors = [e for _ in processes for e in queue.get()]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    stop.set()
    reads, read_errors = reader_queue.get()
    reader.join()
    finished = optuna.load_study(study_name=name, storage=open_backend(kind, folder)).get_trials(deepcopy=False)
    states = [t.state.name for t in finished]
    return {
        "backend": kind + (" + tissue-hpo worker loop" if project_loop else ""),
        "workers": workers,
        "expected": total,
        "complete": states.count("COMPLETE"),
        "failed": states.count("FAIL"),
        "unfinished": states.count("RUNNING") + states.count("WAITING"),
        "lost": total - states.count("COMPLETE") - states.count("PRUNED"),
        "worker_errors": errors,
        "locked_errors": sum("locked" in e for e in errors + read_errors),
        "seconds": round(elapsed, 2),
        "trials_per_second": round(len(finished) / elapsed, 1),
        "reader_polls": reads,
        "reader_errors": read_errors[:3],
        "reader_error_count": len(read_errors),
        "optuna_cli_reads": optuna_cli_reads(kind, folder, name, len(finished)),
    }


def optuna_cli_reads(kind: str, folder: Path, name: str, expected: int) -> bool:
    cli = str(Path(sys.executable).parent / "optuna")
    if kind == "journal":
        storage = ["--storage", str(folder / "journal.log"), "--storage-class", "JournalFileBackend"]
    else:
        storage = ["--storage", f"sqlite:///{folder / ('wal.db' if kind == 'sqlite-wal' else 'plain.db')}"]
    result = subprocess.run([cli, "trials", "--study-name", name, *storage, "-f", "json"], capture_output=True, text=True)
    return result.returncode == 0 and len(json.loads(result.stdout or "[]")) == expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=40, help="trials per worker")
    parser.add_argument("--out", type=Path, help="folder for the stores (default: a temporary one)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="storage-bench-"))
    print(f"machine: {machine()}")
    print(f"{args.workers} worker processes x {args.trials} trials, one dashboard-like reader; stores in {root}\n")
    rows = []
    for kind in BACKENDS:
        folder = root / kind
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        rows.append(run_case(kind, args.workers, args.trials, folder))
    folder = root / "sqlite-wal-loop"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows.append(run_case("sqlite-wal", args.workers, args.trials, folder, project_loop=True))
    header = "| backend | complete / expected | lost | failed | 'database is locked' | s | trials/s | reader polls (errors) | optuna CLI reads |"
    print(header)
    print("|" + "---|" * 9)
    for r in rows:
        print(
            f"| {r['backend']} | {r['complete']} / {r['expected']} | {r['lost']} | {r['failed']} | {r['locked_errors']} | "
            f"{r['seconds']} | {r['trials_per_second']} | {r['reader_polls']} ({r['reader_error_count']}) | "
            f"{'yes' if r['optuna_cli_reads'] else 'no'} |"
        )
    for r in rows:
        for error in r["worker_errors"][:3] + r["reader_errors"][:3]:
            print(f"  {r['backend']}: {error}")
    (root / "results.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
