"""Helpers the performance benchmarks share: the machine, its load, study files, storage timing.

Imported by ``benchmarks/overhead.py``, ``parallel.py``, ``pruning.py``, ``storage_throughput.py``
and ``gpu.py`` (run them from the repository root; each puts the root on ``sys.path``).
"""

from __future__ import annotations

import collections
import functools
import os
import platform
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
DEFAULT_POSTGRES_URL = os.environ.get("HPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# The unit trial of issue 8 ("a classifier trial of a few seconds"): the classifier study's search
# space pinned to one mid-range point. Full preset, top_k_genes 5000 (as the study file), a few epochs.
UNIT_TRIAL_PARAMS: dict[str, Any] = {
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "n_layers": 1,
    "hidden_dim": 512,
    "latent_dim": 128,
    "dropout": 0.3,
    "batch_size": 64,
    "activation": "relu",
    "label_smoothing": 0.0,
    "optimizer": "adamw",
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: CPU model, cores, RAM, GPU (if torch sees one), Python/torch/optuna versions."""
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    versions = [f"Python {platform.python_version()}"]
    gpu = "no GPU"
    try:
        import optuna
        import torch

        versions += [f"torch {torch.__version__}", f"optuna {optuna.__version__}"]
        if torch.cuda.is_available():
            gpu = f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{cpu_model()}, {os.cpu_count()} cores{memory}, {gpu}; {', '.join(versions)}; host {socket.gethostname()}"


def load_average() -> str:
    """``1m/5m/15m`` load averages, e.g. ``0.12/0.30/0.41``."""
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def other_python_jobs() -> list[str]:
    """Command lines of python/pytest processes that are not this one or its children (a busy machine)."""
    own = {os.getpid()}
    jobs = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        if parent in own or "python" not in command.split(" ", 1)[0]:
            continue
        jobs.append(command[:120])
    return jobs


def conditions() -> str:
    """What else ran: the load average and how many other python jobs were on the machine."""
    others = other_python_jobs()
    return f"load average {load_average()}, {len(others)} other python process(es)"


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def study_content(name: str = "classifier") -> dict[str, Any]:
    """The parsed TOML of ``studies/<name>.toml``."""
    return tomllib.loads((STUDIES / f"{name}.toml").read_text(encoding="utf-8"))


def build_spec(content: Mapping[str, Any], path: str | Path) -> Any:
    """A validated :class:`hpo.studyfile.StudySpec` from study-file content (written to ``path`` too)."""
    import tomli_w

    from hpo.study import load_study_file

    path = Path(path)
    path.write_text(tomli_w.dumps(dict(content)), encoding="utf-8")
    return load_study_file(path)


# Optuna's RDB cache (_CachedStorage) and heartbeat check call these private methods of the RDB storage.
PRIVATE_STORAGE_CALLS = ("_get_trials", "_set_trial_param", "_create_new_trial", "_get_best_trial_id",
                         "_get_stale_trial_ids")


class StorageTimer:
    """Counts the calls and wall time of every public method of one storage instance.

    Only the outermost call of a thread is counted (storage methods call each other), so the
    totals are time spent inside the storage, client side (query, network, commit, parsing).
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._depth = threading.local()

    def instrument(self, storage: Any) -> Any:
        for name in dir(type(storage)):
            if name.startswith("_") and name not in PRIVATE_STORAGE_CALLS:
                continue
            attribute = getattr(storage, name, None)
            if callable(attribute):
                setattr(storage, name, self._wrap(name, attribute))
        return storage

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "value", 0)
            self._depth.value = depth + 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.value = depth
                if depth == 0:
                    elapsed = time.perf_counter() - started
                    with self._lock:
                        self.seconds[name] += elapsed
                        self.calls[name] += 1

        return timed

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()

    def total(self, *, exclude: tuple[str, ...] = ("record_heartbeat",)) -> tuple[float, int]:
        """Seconds and calls, without the methods in ``exclude`` (heartbeats run beside the trial)."""
        with self._lock:
            seconds = sum(v for k, v in self.seconds.items() if k not in exclude)
            calls = sum(v for k, v in self.calls.items() if k not in exclude)
        return seconds, calls

    def top(self, n: int = 6) -> list[tuple[str, int, float]]:
        with self._lock:
            return sorted(((k, self.calls[k], v) for k, v in self.seconds.items()), key=lambda r: -r[2])[:n]


def postgres_reachable(url: str) -> bool:
    from hpo.storage import database_reachable

    return database_reachable(url)


def drop_postgres_study(url: str, study_name: str) -> None:
    """Remove a benchmark's study from the shared PostgreSQL (the database is shared with tests)."""
    import optuna

    try:
        optuna.delete_study(study_name=study_name, storage=url)
    except Exception:
        pass
