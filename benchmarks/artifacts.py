"""What uploading trial artifacts costs a trial.

Measures, in one run, on a real SQLite storage (WAL, as ``hpo.storage.open_storage`` opens it):

1. ``upload_learning_curves`` (30 epochs, 4 metrics) and ``upload_confusion_matrix``
   (39 tissues, the DepMap count) per call, median over ``--repeats`` running trials;
2. the same trial (a PyTorch classifier on the ``small`` synthetic preset) with and without
   the uploads, interleaved, so the overhead is a ratio measured under the same load;
3. the alternatives the SVG replaced: plotly HTML with plotly.js embedded (offline) and
   matplotlib SVG (only when matplotlib is importable).

Run: ``nice python benchmarks/artifacts.py`` (``--repeats``, ``--trials``, ``--preset``).
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore

# the repository root first: this folder holds scripts named like the project's packages
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hpo.results import upload_confusion_matrix, upload_learning_curves
from hpo.storage import open_storage


def _history(epochs: int = 30) -> list[dict[str, float]]:
    return [
        {"train_loss": 3.0 / e, "val_loss": 3.2 / e + 0.1, "val_accuracy": 1 - 1 / (e + 1),
         "val_balanced_accuracy": 1 - 1.2 / (e + 1.2)}
        for e in range(1, epochs + 1)
    ]


def _confusion(n: int = 39, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    matrix = rng.integers(0, 3, size=(n, n)) + np.diag(rng.integers(3, 20, size=n))
    return matrix, [f"tissue {i:02d}" for i in range(n)]


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def upload_costs(folder: Path, repeats: int) -> dict[str, float]:
    storage = open_storage(f"sqlite:///{folder / 'uploads.db'}", heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name="uploads", direction="maximize")
    (folder / "store").mkdir()
    store = FileSystemArtifactStore(str(folder / "store"))
    history, (matrix, tissues) = _history(), _confusion()
    curves, confusion = [], []
    for _ in range(repeats):
        trial = study.ask()
        started = time.perf_counter()
        upload_learning_curves(study, trial, history, artifact_store=store)
        curves.append(time.perf_counter() - started)
        started = time.perf_counter()
        upload_confusion_matrix(study, trial, matrix, tissues, artifact_store=store)
        confusion.append(time.perf_counter() - started)
        study.tell(trial, 0.5)
    return {"curves_ms": _median_ms(curves), "confusion_ms": _median_ms(confusion)}


def alternative_costs(repeats: int) -> dict[str, float]:
    import plotly.graph_objects as go

    history = _history()
    results: dict[str, float] = {}
    timings = []
    for _ in range(max(3, repeats // 4)):
        started = time.perf_counter()
        figure = go.Figure()
        for name in history[0]:
            figure.add_trace(go.Scatter(y=[row[name] for row in history], name=name))
        text = figure.to_html(include_plotlyjs=True)
        timings.append(time.perf_counter() - started)
    results["plotly_html_ms"] = _median_ms(timings)
    results["plotly_html_kb"] = len(text.encode()) / 1024
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        return results
    timings = []
    for _ in range(max(3, repeats // 4)):
        started = time.perf_counter()
        figure = Figure(figsize=(6, 3.5))
        axes = figure.subplots()
        for name in history[0]:
            axes.plot([row[name] for row in history], label=name)
        axes.legend()
        figure.savefig(io.BytesIO(), format="svg")
        timings.append(time.perf_counter() - started)
    results["matplotlib_svg_ms"] = _median_ms(timings)
    return results


def trial_overhead(folder: Path, trials: int, preset: str) -> dict[str, float]:
    from sklearn.metrics import confusion_matrix

    from data_pipeline import DataConfig, prepare_dataset
    from models import build_model

    data = prepare_dataset(DataConfig(source="synthetic", preset=preset, cache_dir=str(folder / "cache")))
    storage = open_storage(f"sqlite:///{folder / 'trials.db'}", heartbeat_interval=None)
    study = optuna.create_study(storage=storage, study_name="trials", direction="maximize")
    (folder / "trial-store").mkdir()
    store = FileSystemArtifactStore(str(folder / "trial-store"))
    params = {"hidden_dim": 256, "latent_dim": 64, "max_epochs": 15, "early_stopping_patience": 100}
    build_model("classifier", params, device="cpu", seed=0, num_threads=1).fit(data)  # warm-up, untimed
    plain, uploading, uploads, differences = [], [], [], []

    def run_trial(seed: int, with_uploads: bool) -> float:
        trial = study.ask()
        started = time.perf_counter()
        model = build_model("classifier", params, device="cpu", seed=seed, num_threads=1).fit(data)
        value = model.evaluate(data, "val")["val_balanced_accuracy"]
        if with_uploads:
            upload_started = time.perf_counter()
            upload_learning_curves(study, trial, model.history_, artifact_store=store)
            X_val, y_val = data.split("val")
            matrix = confusion_matrix(y_val, model.predict(X_val), labels=np.arange(data.n_classes))
            upload_confusion_matrix(study, trial, matrix, list(data.tissues), artifact_store=store)
            uploads.append(time.perf_counter() - upload_started)
        elapsed = time.perf_counter() - started
        study.tell(trial, value)
        return elapsed

    for pair in range(trials):
        # the same model (same seed) with and without uploads, in alternating order against drift
        order = (False, True) if pair % 2 == 0 else (True, False)
        times = {with_uploads: run_trial(pair, with_uploads) for with_uploads in order}
        plain.append(times[False])
        uploading.append(times[True])
        differences.append(times[True] - times[False])
    return {
        "trial_s": statistics.median(plain),
        "trial_with_uploads_s": statistics.median(uploading),
        "uploads_in_trial_ms": _median_ms(uploads),
        "paired_difference_ms": _median_ms(differences),
        "n_epochs": float(params["max_epochs"]),
        "samples": float(len(data.y_train)),
        "genes": float(data.n_features),
        "tissues": float(data.n_classes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--trials", type=int, default=8, help="trial pairs (with and without uploads)")
    parser.add_argument("--preset", default="small", choices=("tiny", "small", "full"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hpo-bench-artifacts-") as tmp:
        folder = Path(tmp)
        costs = upload_costs(folder, args.repeats)
        alternatives = alternative_costs(args.repeats)
        overhead = trial_overhead(folder, args.trials, args.preset)
    print(f"python {platform.python_version()}, optuna {optuna.__version__}")
    print(f"upload_learning_curves (30 epochs, 4 metrics): {costs['curves_ms']:.1f} ms (median of {args.repeats})")
    print(f"upload_confusion_matrix (39 tissues):          {costs['confusion_ms']:.1f} ms")
    print(f"plotly HTML with plotly.js (offline):          {alternatives['plotly_html_ms']:.1f} ms, "
          f"{alternatives['plotly_html_kb']:.0f} KiB per figure")
    if "matplotlib_svg_ms" in alternatives:
        print(f"matplotlib SVG (render only):                  {alternatives['matplotlib_svg_ms']:.1f} ms")
    print(f"trial ({overhead['samples']:.0f} train samples x {overhead['genes']:.0f} genes, "
          f"{overhead['tissues']:.0f} tissues, {overhead['n_epochs']:.0f} epochs):")
    print(f"  without uploads: {overhead['trial_s']:.2f} s (median of {args.trials})")
    print(f"  with uploads:    {overhead['trial_with_uploads_s']:.2f} s; paired difference (same seed) "
          f"{overhead['paired_difference_ms']:+.0f} ms (median); the uploads themselves "
          f"{overhead['uploads_in_trial_ms']:.1f} ms = "
          f"{100 * overhead['uploads_in_trial_ms'] / 1000 / overhead['trial_s']:.2f}% of the trial")


if __name__ == "__main__":
    main()
