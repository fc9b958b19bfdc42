"""Does the cost per trial stay flat as a study grows? Studies of 100 / 1,000 / 10,000 trials.

Usage (repository root, venv active)::

    python benchmarks/scale.py                       # SQLite + PostgreSQL (if reachable), 100/1,000/10,000
    python benchmarks/scale.py --quick               # SQLite, 100 and 1,000 trials (a few minutes)
    python benchmarks/scale.py --sizes 100 10000 --backends sqlite --repeats 5

Each study is prefilled fast: a real worker runs the study's first 4 trials (a tiny classifier, 3
epochs, so every row a real trial writes is there: parameters, values, epoch reports, user and system
attributes, the trial's dashboard note), then their rows are copied in bulk (SQL ``INSERT``s of
Optuna's tables) up to the size, with new parameter values and results (a tenth pruned). Then, per size:

* **framework CPU per new trial**: a fresh worker process (``hpo worker``'s code; a wrapper notes its CPU
  time at each turn of the trial loop and the CPU spent in the model's ``fit`` and ``evaluate``) runs 24 new
  trials (the same tiny classifier, random sampler, no pruner, 1 thread). Framework CPU per trial = the
  turn's CPU minus the model's, the median over trials 2-24 (a median: one GC pause is not the trend), then the
  median over ``--repeats`` rounds (each on freshly prefilled studies, sizes in alternating order; the ratio of
  10,000 to 100 is taken per round, so drifting load cancels); the first trial's extra (Optuna's cached storage
  reads every trial of the study once per process) is reported apart. CPU time, not wall time, so other
  jobs on the machine disturb it less (not nothing: a loaded machine slows CPU-bound code too).
* **start-up to the first trial**: from the worker's start to its first trial's start (the storage).
* ``hpo studies``, ``hpo show``, ``hpo export``, ``hpo report``: wall time of a fresh process each.
* **dashboard study API**: ``hpo dashboard`` started on the storage, the wall time of
  ``GET /api/studies/<id>`` over HTTP (first call, then a second one).

The growth exponent of a figure between sizes n1 < n2 is log(f2 / f1) / log(n2 / n1) (0: flat, 1: linear).
Goal (issue 21): framework CPU per trial at 10,000 trials within 1.2x of 100; ``hpo report`` at 10,000
under 30 s. Prints a Markdown table ready for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._perf import DEFAULT_POSTGRES_URL, ROOT, conditions, machine, postgres_reachable  # noqa: E402

TEMPLATE_TRIALS = 4
NEW_TRIALS = 24
FIXED = {"max_epochs": 3, "batch_size": 32, "n_layers": 1, "hidden_dim": 32, "latent_dim": 16,
         "early_stopping_patience": 0}
SPACE = {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
         "dropout": {"type": "float", "low": 0.0, "high": 0.3}}


def study_file(folder: Path, name: str, n_trials: int, cache_dir: Path) -> Path:
    import tomli_w

    content = {
        "name": name, "model": "classifier", "metric": "val_balanced_accuracy", "direction": "maximize",
        "n_trials": n_trials, "device": "cpu",
        "data": {"preset": "tiny", "cache_dir": str(cache_dir)},
        "fixed": FIXED, "space": SPACE,
        "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"},
    }
    path = folder / f"{name}-{n_trials}.toml"
    path.write_text(tomli_w.dumps(content), encoding="utf-8")
    return path


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "HPO_NUM_THREADS"):
        env[variable] = "1"
    return env


WORKER = """
import json, sys, time
import hpo.run._worker as worker
from models.torch_model import TorchModel
model_cpu = [0.0]
def timed(method):
    def run(*args, **kwargs):
        started = time.process_time()
        try:
            return method(*args, **kwargs)
        finally:
            model_cpu[0] += time.process_time() - started
    return run
TorchModel.fit, TorchModel.evaluate = timed(TorchModel.fit), timed(TorchModel.evaluate)
marks = []
stale = worker._fail_stale_trials
def mark(*args, **kwargs):  # the start of every turn of the trial loop
    marks.append((time.process_time(), model_cpu[0], time.perf_counter()))
    return stale(*args, **kwargs)
worker._fail_stale_trials = mark
from hpo.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump(marks, out)
sys.exit(code)
"""
"""A real ``hpo worker`` (the CLI's code, in a fresh process) that writes, at the start of each turn of its
trial loop, its CPU seconds, the CPU seconds spent in the model's ``fit`` and ``evaluate``, and the time."""


def run_worker(path: Path, url: str, name: str) -> tuple[dict[str, float], datetime.datetime]:
    """Framework CPU per trial in the steady state (every trial but the first: the model's fit and evaluate
    taken out), the first trial's extra framework CPU, and when the process started."""
    with tempfile.NamedTemporaryFile(suffix=".json") as timing:
        started_at = datetime.datetime.now()
        subprocess.run([sys.executable, "-c", WORKER, timing.name, "worker", str(path), "--storage", url,
                        "--study-name", name, "--threads", "1", "--worker-index", "0"],
                       env=environment(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        marks = json.loads(Path(timing.name).read_text())
    ran = len(marks) - 1  # the last turn found the budget spent
    framework = [(b[0] - a[0]) - (b[1] - a[1]) for a, b in zip(marks, marks[1:])]
    model = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
    steady = statistics.median(framework[1:]) if ran > 1 else math.nan  # a median: one GC pause or slow disk write is not the trend
    return {"ran": ran, "framework_cpu_ms": 1000 * steady, "first_extra_cpu_s": framework[0] - steady,
            "model_cpu_ms": 1000 * statistics.median(model), "loop_cpu_ms": 1000 * (steady + statistics.median(model))}, started_at


# -- prefill ---------------------------------------------------------------------------------------


NOT_COPIED = {"reference", "fixed_params", "hpo:confusion"}
"""Trial attributes the copies leave out: a study has one reference trial (user attribute ``reference``, enqueued:
system ``fixed_params``), and only a new best trial uploads a confusion matrix."""


def prefill(url: str, name: str, size: int, seed: int = 0) -> None:
    """Copy the study's first trials (made by a real worker) until it holds ``size`` trials."""
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    from hpo.storage import open_storage

    storage = open_storage(url, heartbeat_interval=None)
    backend = getattr(storage, "_backend", storage)
    engine = backend.engine
    rng = random.Random(seed)
    with engine.begin() as connection:
        study_id = connection.execute(sqlalchemy.select(models.StudyModel.study_id).where(
            models.StudyModel.study_name == name)).scalar_one()
        trials = [dict(row._mapping) for row in connection.execute(
            sqlalchemy.select(models.TrialModel.__table__).where(models.TrialModel.study_id == study_id)
            .order_by(models.TrialModel.number))]
        template_ids = [t["trial_id"] for t in trials]
        children = {}
        for model in (models.TrialParamModel, models.TrialValueModel, models.TrialIntermediateValueModel,
                      models.TrialUserAttributeModel, models.TrialSystemAttributeModel):
            table = model.__table__
            key = [c.name for c in table.primary_key.columns][0]
            children[table] = [
                {k: v for k, v in dict(row._mapping).items() if k != key}
                for row in connection.execute(sqlalchemy.select(table).where(table.c.trial_id.in_(template_ids)))
            ]
        notes_table = models.StudySystemAttributeModel.__table__
        notes = {
            row.key: row.value_json for row in connection.execute(
                sqlalchemy.select(notes_table).where(notes_table.c.study_id == study_id))
        }
        next_id = connection.execute(sqlalchemy.select(sqlalchemy.func.max(models.TrialModel.trial_id))).scalar() + 1
        have = len(trials)
        batch = 2000
        for start in range(have, size, batch):
            rows: dict[Any, list[dict[str, Any]]] = {models.TrialModel.__table__: [], notes_table: []}
            for number in range(start, min(size, start + batch)):
                template = trials[number % len(trials)]
                trial_id = next_id
                next_id += 1
                pruned = rng.random() < 0.1
                state = TrialState.PRUNED if pruned else TrialState.COMPLETE
                rows[models.TrialModel.__table__].append({
                    **template, "trial_id": trial_id, "number": number,
                    "state": state,
                })
                value = rng.random()
                for table, copies in children.items():
                    for child in copies:
                        if child["trial_id"] != template["trial_id"]:
                            continue
                        if table is models.TrialValueModel.__table__ and pruned:
                            continue
                        if child.get("key") in NOT_COPIED:  # one reference trial; confusion matrices of new bests only
                            continue
                        row = {**child, "trial_id": trial_id}
                        if table is models.TrialParamModel.__table__:
                            row["param_value"] = (math.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))
                                                  if row["param_name"] == "lr" else rng.uniform(0.0, 0.3))
                        elif table is models.TrialValueModel.__table__:
                            row["value"] = value
                        elif table is models.TrialUserAttributeModel.__table__ and row["key"] == "worker":
                            row["value_json"] = json.dumps(f"prefill-{number % 8}")
                        rows.setdefault(table, []).append(row)
                for suffix in ("note_str:0", "note_ver"):
                    key = f"dashboard:{template['trial_id']}:{suffix}"
                    if key in notes:
                        rows[notes_table].append({"study_id": study_id, "key": f"dashboard:{trial_id}:{suffix}",
                                                  "value_json": notes[key]})
            for table, values in rows.items():
                if values:
                    connection.execute(sqlalchemy.insert(table), values)
        if engine.dialect.name == "postgresql":
            connection.execute(sqlalchemy.text(
                "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), (SELECT MAX(trial_id) FROM trials))"))
    engine.dispose()


# -- measurements ----------------------------------------------------------------------------------


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hpo.cli", *command], env=environment(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


API_TIMEOUT_S = 180.0
"""A dashboard call slower than this is reported as ``inf`` (shown ``> 180``) and not repeated."""


def dashboard_api(url: str, study_id: int) -> tuple[float, float]:
    """Wall seconds of the first and the second ``GET /api/studies/<id>`` of a fresh ``hpo dashboard``."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "hpo.cli", "dashboard", "--storage", url, "--port", str(port)],
                               env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("hpo dashboard did not start") from None
                time.sleep(0.5)
        calls = []
        for _ in range(2):
            started = time.perf_counter()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=API_TIMEOUT_S).read()
            except (TimeoutError, OSError):
                return math.inf, math.inf
            calls.append(time.perf_counter() - started)
        return calls[0], calls[1]
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(backend: str, url: str, size: int, folder: Path, cache_dir: Path, round_: int = 0) -> dict[str, float]:
    """One freshly prefilled study of ``size`` trials: framework CPU per new trial and start-up (every round), the
    commands and the dashboard API (round 0 only: wall times of whole commands, measured once)."""
    import optuna

    name = f"scale-{backend}-{size}-{os.getpid()}-{round_}"
    started = time.perf_counter()
    run_worker(study_file(folder, name, TEMPLATE_TRIALS, cache_dir), url, name)
    prefill(url, name, size)
    prefill_s = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=url)
    assert len(study.get_trials(deepcopy=False)) == size, "prefill"
    loop, started_at = run_worker(study_file(folder, name, size + NEW_TRIALS, cache_dir), url, name)
    first = min(t.datetime_start for t in study.get_trials(deepcopy=False) if t.number >= size)
    out = folder / f"{name}-out"
    out.mkdir()
    figures = {
        "size": size, "round": round_, "prefill_s": prefill_s,
        "framework_cpu_ms": loop["framework_cpu_ms"], "model_cpu_ms": loop["model_cpu_ms"],
        "first_extra_cpu_s": loop["first_extra_cpu_s"],
        "startup_s": (first - started_at).total_seconds(),
    }
    if round_ == 0:
        figures |= {
            "studies_s": timed(["studies", "--storage", url]),
            "show_s": timed(["show", name, "--storage", url]),
            "export_s": timed(["export", name, "--storage", url, "--out", str(out / "best.toml")]),
            "report_s": timed(["report", name, "--storage", url, "--out", str(out / "report")]),
        }
        figures["api_first_s"], figures["api_second_s"] = dashboard_api(url, study._study_id)
    print(f"  {backend} {size} round {round_}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()), flush=True)
    if backend == "postgresql":
        optuna.delete_study(study_name=name, storage=url)
    return figures


def exponent(a: float, b: float, n1: int, n2: int) -> str:
    if a <= 0 or b <= 0:
        return "n/a"
    return f"{math.log(b / a) / math.log(n2 / n1):.2f}"


COLUMNS = (
    ("framework_cpu_ms", "framework CPU / trial (ms)", "{:.0f}"),
    ("model_cpu_ms", "model fit+evaluate CPU / trial (ms)", "{:.0f}"),
    ("relative", "framework ÷ model CPU", "{:.2f}"),
    ("first_extra_cpu_s", "first trial extra CPU (s)", "{:.2f}"),
    ("startup_s", "start-up to 1st trial (s)", "{:.1f}"),
    ("studies_s", "`hpo studies` (s)", "{:.1f}"),
    ("show_s", "`hpo show` (s)", "{:.1f}"),
    ("export_s", "`hpo export` (s)", "{:.1f}"),
    ("report_s", "`hpo report` (s)", "{:.1f}"),
    ("api_first_s", "dashboard API, 1st / 2nd (s)", None),
)


PER_ROUND = ("framework_cpu_ms", "model_cpu_ms", "first_extra_cpu_s", "startup_s")
"""Figures measured in every round: the table shows their median over rounds."""


def summarise(rounds: list[dict[str, float]]) -> dict[str, float]:
    """One size's row: the median over rounds of the per-round figures, round 0's command timings."""
    row = dict(next(r for r in rounds if r["round"] == 0))
    for key in PER_ROUND:
        row[key] = statistics.median(r[key] for r in rounds)
    row["relative"] = statistics.median(r["framework_cpu_ms"] / r["model_cpu_ms"] for r in rounds)
    return row


def round_ratios(rounds: dict[int, list[dict[str, float]]], small: int, large: int, key: str) -> list[float]:
    """Per round, the figure at ``large`` over the same round's figure at ``small`` (paired: run minutes apart)."""
    by_round = {r["round"]: r for r in rounds[small]}
    ratios = []
    for r in rounds[large]:
        if r["round"] in by_round:
            a, b = by_round[r["round"]], r
            if key == "relative":
                ratios.append((b["framework_cpu_ms"] / b["model_cpu_ms"]) / (a["framework_cpu_ms"] / a["model_cpu_ms"]))
            else:
                ratios.append(b[key] / a[key])
    return ratios


def table(results: dict[str, dict[int, list[dict[str, float]]]], repeats: int) -> str:
    lines = [f"### Scale: cost per trial vs study size ({datetime.date.today()})", "",
             f"Machine: {machine()}. Tiny classifier trials (3 epochs, 1 thread, random sampler, no pruner); "
             f"framework CPU = the median over trials 2-{NEW_TRIALS} of a trial's worker CPU minus the model's fit and evaluate "
             f"of a fresh worker; the first trial's extra CPU (Optuna's cache reading every trial once) is in "
             f"'first trial extra'. {repeats} round(s), each on freshly prefilled studies of every size, sizes in "
             f"alternating order; per-trial figures are medians over rounds, commands and the dashboard API are "
             f"round 0's. The ratio rows give the median of the per-round ratios and their range.", "",
             "| backend | trials | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(COLUMNS)]
    for backend, by_size in results.items():
        rows = [summarise(by_size[size]) for size in sorted(by_size)]
        for row in rows:
            cells = []
            for key, _, fmt in COLUMNS:
                if key == "api_first_s":
                    cells.append(f"{row['api_first_s']:.2f} / {row['api_second_s']:.2f}"
                                 if math.isfinite(row["api_first_s"]) else f"> {API_TIMEOUT_S:.0f}")
                else:
                    cells.append(fmt.format(row[key]))
            lines.append(f"| {backend} | {row['size']:,} | " + " | ".join(cells) + " |")
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            cells = [exponent(first[key], last[key], first["size"], last["size"]) for key, _, _ in COLUMNS]
            lines.append(f"| {backend} | exponent {first['size']:,}→{last['size']:,} | " + " | ".join(cells) + " |")
            cells = []
            for key in ("framework_cpu_ms", "model_cpu_ms", "relative"):
                ratios = round_ratios(by_size, first["size"], last["size"], key)
                cells.append(f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
            cells += ["" for _ in COLUMNS[3:]]
            lines.append(f"| {backend} | ratio {last['size']:,} / {first['size']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SQLite, 100 and 1,000 trials")
    parser.add_argument("--sizes", nargs="+", type=int, default=None)
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=None)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of fresh studies per size (paired ratios; the 100-trial figure alone moves 2x)")
    args = parser.parse_args()
    sizes = sorted(args.sizes or ([100, 1000] if args.quick else [100, 1000, 10000]))
    backends = args.backends or (["sqlite"] if args.quick else ["sqlite", "postgresql"])
    if "postgresql" in backends and not postgres_reachable(args.postgres_url):
        print(f"PostgreSQL not reachable at {args.postgres_url}: SQLite only")
        backends = [b for b in backends if b != "postgresql"]

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"machine: {machine()}\nbefore: {conditions()}", flush=True)
    results: dict[str, dict[int, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="hpo-scale-") as tmp:
        folder = Path(tmp)
        cache_dir = folder / "cache"
        for backend in backends:
            for round_ in range(args.repeats):
                for size in sizes if round_ % 2 == 0 else sizes[::-1]:  # alternate: a drift in load hits both ends
                    url = (f"sqlite:///{folder / f'scale-{size}-{round_}.db'}" if backend == "sqlite"
                           else args.postgres_url)
                    figures = measure(backend, url, size, folder, cache_dir, round_)
                    results.setdefault(backend, {}).setdefault(size, []).append(figures)
    print(f"after: {conditions()}\n")
    print(table(results, args.repeats))


if __name__ == "__main__":
    main()
