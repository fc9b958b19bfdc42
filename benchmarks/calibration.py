"""How hard the synthetic default is: baselines, the untuned and the demo-tuned classifier.

Run from the repository root (the venv active):

    nice python benchmarks/calibration.py                        # full preset, top 5,000 genes
    python benchmarks/calibration.py --tuned hpo-runs/demo/<study>/best.toml   # a demo's own winner

Every model is trained on the training split and scored on the validation and test splits
(accuracy and balanced accuracy); logistic regression and both classifiers are then refitted on
train+val (a classifier for its retrain epoch count, as ``hpo demo`` does) and scored on test. The
classifier rows are means (± sd) over ``--seeds`` training seeds: one seed's test figure moves by
~0.01-0.03, as much as the differences being measured. The baselines are scikit-learn's estimators with their
defaults (the RBF SVC with ``gamma='scale'`` is the original analysis' ~0.4 baseline); the deep
classifier runs once with the registry defaults ("untuned") and once with the demo's tuned
configuration: the demo study's fixed parameters plus the parameters of its best trial, read from
a ``best.toml`` that ``hpo demo`` / ``hpo export`` wrote, or else the configuration recorded in
``TUNED_DEMO_PARAMS`` (the winner of the run shown in benchmarks/RESULTS.md). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
from sklearn.metrics import accuracy_score, balanced_accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._perf import STUDIES, conditions, machine  # noqa: E402
from data_pipeline import DataConfig, PreparedDataset, prepare_dataset  # noqa: E402
from models import build_model  # noqa: E402

TUNED_DEMO_PARAMS: dict[str, Any] = {
    "lr": 3.286e-4, "hidden_dim": 256, "latent_dim": 64, "dropout": 0.05584, "weight_decay": 1.8506e-4
}
"""Best trial of the `hpo demo` run recorded in benchmarks/RESULTS.md (used when --tuned is not given)."""


def tuned_params(best_toml: Path | None) -> dict[str, Any]:
    """The demo study's fixed parameters plus the tuned ones (from ``best_toml``'s [params], else the recorded ones)."""
    study = tomllib.loads((STUDIES / "demo.toml").read_text())
    if best_toml is None:
        searched = TUNED_DEMO_PARAMS
    else:
        exported = tomllib.loads(best_toml.read_text())
        searched = exported.get("params", exported)
    return {**study.get("fixed", {}), **{k: v for k, v in searched.items() if k in study["space"]}}


def scores(
    predict: Callable[[np.ndarray], np.ndarray], data: PreparedDataset, splits: tuple[str, ...] = ("val", "test")
) -> dict[str, float]:
    """Accuracy and balanced accuracy of ``predict`` on each of ``splits``."""
    out = {}
    for split in splits:
        X, y = data.split(split)
        predicted = predict(np.asarray(X))
        out[f"{split}_accuracy"] = accuracy_score(y, predicted)
        out[f"{split}_balanced_accuracy"] = balanced_accuracy_score(y, predicted)
    return out


def sklearn_baselines() -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    return {
        "logistic regression (scikit-learn defaults)": LogisticRegression(max_iter=1000),
        "SVC (scikit-learn defaults: RBF, gamma='scale')": SVC(),
        "random forest (300 trees)": RandomForestClassifier(n_estimators=300, n_jobs=-1, random_state=0),
        "KNN (scikit-learn defaults: k=5)": KNeighborsClassifier(),
    }


def classifier_rows(params: dict[str, Any], label: str, data: PreparedDataset, seeds: int, threads: int
                    ) -> list[tuple[str, dict[str, float], float]]:
    """``label`` trained on train (val and test scores) and refitted on train+val for its retrain epoch
    count (the rule ``hpo demo`` and ``hpo train --config`` use), each the mean over ``seeds`` seeds."""
    on_train, refit, epochs, seconds = [], [], [], [0.0, 0.0]
    for seed in range(seeds):
        started = time.perf_counter()
        model = build_model("classifier", params, device="cpu", seed=seed, num_threads=threads).fit(data)
        seconds[0] += time.perf_counter() - started
        on_train.append(scores(model.predict, data))
        epochs.append(model.retrain_epochs_)
        started = time.perf_counter()
        final = build_model("classifier", {**params, "max_epochs": model.retrain_epochs_}, device="cpu", seed=seed,
                            num_threads=threads).fit(data, train_split="train+val")
        seconds[1] += time.perf_counter() - started
        refit.append(scores(final.predict, data, splits=("test",)))
    mean = lambda rows: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}  # noqa: E731
    sd = lambda rows: {k: float(np.std([r[k] for r in rows])) for k in rows[0]}  # noqa: E731
    return [
        (f"{label} [{min(epochs)}-{max(epochs)} ep]", {**mean(on_train), "sd": sd(on_train)}, seconds[0] / seeds),
        (f"{label}, refit on train+val [{min(epochs)}-{max(epochs)} ep] (as `hpo demo`)",
         {**mean(refit), "sd": sd(refit)}, seconds[1] / seeds),
    ]


def _cell(s: dict[str, Any], key: str) -> str:
    if key not in s:  # a refit on train+val has no validation score
        return "–"
    spread = s.get("sd", {}).get(key)
    return f"{s[key]:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--top-k-genes", type=int, default=5000)
    parser.add_argument("--tuned", type=Path, help="best.toml of a demo run (default: the recorded winner)")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5, help="training seeds each classifier row averages over")
    args = parser.parse_args()

    data = prepare_dataset(DataConfig(preset=args.preset, top_k_genes=args.top_k_genes, cache_dir=args.cache_dir))
    X_train, y_train = (np.asarray(a) for a in data.split("train"))
    majority = np.bincount(y_train).argmax()
    rows: list[tuple[str, dict[str, Any], float]] = [
        ("majority class", scores(lambda X: np.full(len(X), majority), data), 0.0)
    ]
    for name, estimator in sklearn_baselines().items():
        started = time.perf_counter()
        estimator.fit(X_train, y_train)
        rows.append((name, scores(estimator.predict, data), time.perf_counter() - started))
    X_fit, y_fit = (np.asarray(a) for a in data.split("train+val"))
    started = time.perf_counter()
    linear = sklearn_baselines()["logistic regression (scikit-learn defaults)"].fit(X_fit, y_fit)
    rows.append(("logistic regression (scikit-learn defaults), refit on train+val",
                 scores(linear.predict, data, splits=("test",)), time.perf_counter() - started))
    rows += classifier_rows({}, "classifier, registry defaults (untuned)", data, args.seeds, args.threads)
    rows += classifier_rows(tuned_params(args.tuned), "classifier, tuned by `hpo demo`", data, args.seeds, args.threads)

    print(f"data: preset {args.preset}, top {args.top_k_genes} genes; {data.n_classes} tissues; "
          f"train/val/test {len(y_train)}/{len(data.y_val)}/{len(data.y_test)}")
    print(f"machine: {machine()}; {conditions()}")
    print(f"tuned classifier: {tuned_params(args.tuned)}; classifier rows: mean ± sd over {args.seeds} training seeds\n")
    print("| model (trained on train unless noted) | val acc | val bal. acc | test acc | test bal. acc | fit |")
    print("|---|---|---|---|---|---|")
    for name, s, seconds in rows:
        cells = " | ".join(_cell(s, k) for k in ("val_accuracy", "val_balanced_accuracy", "test_accuracy",
                                                   "test_balanced_accuracy"))
        print(f"| {name} | {cells} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
