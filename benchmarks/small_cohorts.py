"""Does tuning beat the defaults on small cohorts? The shipped studies on two small synthetic cohorts.

Run from the repository root (the venv active; slow: start it in the background):

    nohup nice python benchmarks/small_cohorts.py --out hpo-runs/small-cohorts > small_cohorts.log 2>&1 &
    python benchmarks/small_cohorts.py --quick                    # one cohort, two split seeds, 6 trials

Two DepMap-like cohorts are generated (data_pipeline.synthetic, the ``full`` preset's structure), shaped
like the real ones of issue 19: ``8 tissues`` (~60 samples, 3-12 per tissue) and ``4 tissues`` (~80
samples), a share of the lines being replicates that share a ``PatientID`` (kept in one split and one
fold). For each cohort and split seed (``data.split_seed`` 0-4), the shipped classifier, SVC,
logistic-regression and autoencoder studies run ``--trials`` trials in this process (the objective
``hpo run``'s workers use, one SQLite file per study). The registry defaults, clipped into the study's
space, are enqueued as trial 0 with ``reference = True`` (unless the study already has a reference
trial). The selected trial (what ``hpo export`` exports: the winner unless its gain over the reference is
within the noise, :func:`hpo.results.selected_trial`), the reference and, when the rule kept the reference,
the raw winner are then exported and retrained on train+val (``hpo export`` + ``hpo train --config``) and
scored once on test (``--retrain-mode schedule``: one model). For the PyTorch studies the selected
trial and the reference are also retrained with ``--retrain-mode fold-average`` (one model per CV fold of
train+val, predictions averaged; columns ``*_fold_average``; rows written before these columns get them from
their stored studies on a rerun, without new trials). Beside them: scikit-learn's LogisticRegression and
default RBF SVC fitted on train+val, and, for the autoencoder, PCA with the winner's latent size (capped
by the rows) fitted on train+val.

``--cohort-seeds 31 ...`` regenerates the two shapes with other generator seeds ("8 tissues (seed 31)"): data
the selection rule's thresholds were not set on. ``--set KEY=VALUE`` overrides a shipped study's key (recorded
in the rows); ``--summary`` prints the tables of the rows so far and runs nothing.

Prints one line per study as it finishes, then per cohort and model the mean test score over the split
seeds of tuned / reference / logistic regression / SVC (/ PCA), the per-split values, and the bars of
issue 19: the tuned classifier's mean at least the reference's and never more than one test sample
behind on a split; the tuned autoencoder's MSE at most the reference's. Results are appended to
``OUT/results.jsonl`` as they come (a rerun skips the finished studies).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._perf import STUDIES, conditions, machine

COHORTS: dict[str, dict[str, Any]] = {
    "8 tissues": {"n_samples": 62, "n_tissues": 8, "imbalance": 0.9, "replicate_share": 0.15, "seed": 19},
    "4 tissues": {"n_samples": 80, "n_tissues": 4, "imbalance": 0.5, "replicate_share": 0.15, "seed": 23},
}
N_GENES = 1000
MODELS = ("classifier", "svc", "logistic_regression", "autoencoder")
TORCH_MODELS = ("classifier", "autoencoder")
"""Rows of these also record the fold-average retrain (``hpo train --config --retrain-mode fold-average``)."""
CLASSIFICATION_METRIC = "test_accuracy"
RECONSTRUCTION_METRIC = "test_reconstruction_mse"


def cohort_name(shape: str, seed: int | None) -> str:
    """``shape`` (a key of COHORTS) as shipped, or regenerated with generator seed ``seed``: "8 tissues (seed 31)"."""
    return shape if seed is None else f"{shape} (seed {seed})"


def cohort_shape(name: str) -> dict[str, Any]:
    """The generator arguments of a cohort name made by :func:`cohort_name`."""
    shape, _, rest = name.partition(" (seed ")
    spec = dict(COHORTS[shape])
    if rest:
        spec["seed"] = int(rest.rstrip(")"))
    return spec


def cohort_files(name: str, out: Path) -> tuple[Path, Path]:
    """The cohort's two DepMap-layout files (made once under ``out/cohorts``)."""
    from data_pipeline import synthetic

    shape = cohort_shape(name)
    replicate_share, imbalance, seed = shape.pop("replicate_share"), shape.pop("imbalance"), shape.pop("seed")
    spec = synthetic.spec_for("full", seed=seed, n_genes=N_GENES, **shape)
    spec = dataclasses.replace(spec, imbalance=imbalance, replicate_share=replicate_share)
    folder = out / "cohorts" / slug(name)
    expression = folder / synthetic.CLASSIC_EXPRESSION_FILE
    if not expression.is_file():
        synthetic.generate_files(spec, folder)
    return expression, folder / synthetic.MODEL_FILE


def slug(name: str) -> str:
    return name.replace(" (seed ", "-seed-").rstrip(")").replace(" ", "-")


def data_overrides(files: tuple[Path, Path], split_seed: int, out: Path) -> dict[str, Any]:
    return {
        "data.source": "depmap", "data.expression_path": str(files[0]), "data.model_path": str(files[1]),
        "data.min_samples_per_tissue": 3, "data.split_seed": split_seed, "data.cache_dir": str(out / "cache"),
    }


def reference_params(spec: Any) -> dict[str, Any]:
    """The registry defaults the study's space would take untuned, clipped into the space (raw Optuna values)."""
    from optuna.distributions import CategoricalDistribution

    from models.registry import resolve_model_params

    defaults = resolve_model_params(spec.model, spec.fixed)
    known, chosen = dict(spec.fixed), {}
    for parameter in spec.space:
        if not parameter.active(known):
            continue
        value, distribution = defaults.get(parameter.name), parameter.distribution
        if isinstance(distribution, CategoricalDistribution):
            value = value if value in distribution.choices else distribution.choices[0]
        else:
            value = min(max(value, distribution.low), distribution.high)
            if getattr(distribution, "step", None):
                value = distribution.low + round((value - distribution.low) / distribution.step) * distribution.step
            value = type(distribution.low)(value)
        known[parameter.name] = chosen[parameter.name] = value
    return chosen


def run_study(model: str, overrides: dict[str, Any], folder: Path, trials: int, threads: int) -> tuple[Any, Any]:
    """Run the shipped study ``model`` in this process; the study and its spec."""
    import optuna

    from data_pipeline import prepare_dataset
    from hpo.run import announce_folds, build_objective, with_fold_count
    from hpo.run._setup import open_study
    from hpo.study import load_study_file

    spec = load_study_file(STUDIES / f"{model}.toml", {**overrides, "n_trials": trials})
    data = prepare_dataset(spec.data)
    folder.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
    study_file_spec, spec = spec, with_fold_count(spec, data)  # as `hpo run`: the folds the smallest tissue allows
    study = open_study(spec, storage, data_fingerprint=data.fingerprint)
    announce_folds(study, study_file_spec, data)
    if not any(t.user_attrs.get("reference") for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(reference_params(spec), user_attrs={"reference": True})
    left = trials - len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                               optuna.trial.TrialState.PRUNED)))
    if left > 0:
        study.optimize(build_objective(spec, data, num_threads=threads), n_trials=left)
    return study, spec


def retrained_test(study: Any, number: int | None, folder: Path, threads: int) -> dict[str, float]:
    """Export trial ``number`` (None: the selected trial, what ``hpo export`` exports) and retrain it on
    train+val, as the README says, with the ``schedule`` retrain (one model); its test metrics."""
    from hpo.results import SCHEDULE, export_trial, retrain

    config = export_trial(study, number)
    result = retrain(config, folder / f"retrain-{'selected' if number is None else number}", num_threads=threads,
                     mode=SCHEDULE, reference=False)  # the reference is retrained on its own when not selected
    return {k: float(v) for k, v in result.metrics.items() if k.startswith("test_")}


def fold_average_test(study: Any, folder: Path, threads: int) -> tuple[dict[str, float], dict[str, float]]:
    """The selected trial and the reference, each retrained with ``--retrain-mode fold-average`` (one model per
    CV fold of train+val, predictions averaged); their test metrics (the reference's: {} when the study has none)."""
    from hpo.results import FOLD_AVERAGE, export_trial, retrain

    result = retrain(export_trial(study, None), folder / "retrain-selected-fold-average", num_threads=threads,
                     mode=FOLD_AVERAGE)
    test = lambda metrics: {k: float(v) for k, v in metrics.items() if k.startswith("test_")}
    return test(result.metrics), test(result.reference.metrics) if result.reference is not None else {}


def fold_average_columns(study: Any, metric: str, folder: Path, threads: int) -> dict[str, Any]:
    """The row's fold-average columns (PyTorch models)."""
    started = time.perf_counter()
    tuned, reference = fold_average_test(study, folder, threads)
    return {
        "tuned_fold_average": tuned.get(metric), "reference_fold_average": reference.get(metric),
        "tuned_fold_average_balanced": tuned.get("test_balanced_accuracy"),
        "reference_fold_average_balanced": reference.get("test_balanced_accuracy"),
        "seconds_fold_average": round(time.perf_counter() - started, 1),
    }


def baselines(spec: Any, latent_dim: int | None) -> dict[str, float]:
    """LogisticRegression and default RBF SVC (classification) or PCA (reconstruction) fitted on train+val."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.svm import SVC

    from data_pipeline import prepare_dataset

    data = prepare_dataset(spec.data)
    X, y = data.split("train+val")
    X_test, y_test = np.asarray(data.X_test), np.asarray(data.y_test)
    if latent_dim is not None:
        pca = PCA(n_components=min(latent_dim, len(X) - 1, X.shape[1])).fit(X)
        mse = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
        return {"pca": mse}
    out = {}
    for name, estimator in (("logreg", LogisticRegression(max_iter=2000)), ("svc_rbf", SVC())):
        predicted = estimator.fit(np.asarray(X), np.asarray(y)).predict(X_test)
        out[name] = float(accuracy_score(y_test, predicted))
        out[f"{name}_balanced"] = float(balanced_accuracy_score(y_test, predicted))
    return out


def one(cohort: str, seed: int, model: str, args: argparse.Namespace) -> dict[str, Any]:
    from optuna.trial import TrialState

    out: Path = args.out
    folder = out / "studies" / slug(cohort) / f"seed-{seed}" / model
    started = time.perf_counter()
    overrides = {**data_overrides(cohort_files(cohort, out), seed, out), **study_overrides(args)}
    study, spec = run_study(model, overrides, folder, args.trials, args.threads)
    trials = study.get_trials(deepcopy=False)
    reference = next(t for t in trials if t.user_attrs.get("reference"))
    from hpo.results import best_trial, study_selection

    best, selection = best_trial(study), study_selection(study)
    tuned = retrained_test(study, None, folder, args.threads)  # what `hpo export` exports: the selected trial
    if reference.state == TrialState.COMPLETE:
        defaults = tuned if selection.trial.number == reference.number else retrained_test(
            study, reference.number, folder, args.threads)
    else:
        defaults = {}
    # the raw best too when the rule kept the defaults: what the export gave before the rule
    raw = retrained_test(study, best.number, folder, args.threads) if best.number != selection.trial.number else tuned
    reconstruction = spec.metric == "val_reconstruction_mse"
    latent = int(best.params.get("latent_dim", spec.fixed.get("latent_dim", 512))) if reconstruction else None
    metric = RECONSTRUCTION_METRIC if reconstruction else CLASSIFICATION_METRIC
    from data_pipeline import prepare_dataset

    n_test = len(prepare_dataset(spec.data).y_test)
    return {
        "cohort": cohort, "seed": seed, "model": model, "metric": metric, "n_test": n_test,
        "tuned": tuned.get(metric), "reference": defaults.get(metric),
        "tuned_balanced": tuned.get("test_balanced_accuracy"), "reference_balanced": defaults.get("test_balanced_accuracy"),
        "best_raw": raw.get(metric), "best_raw_balanced": raw.get("test_balanced_accuracy"),
        "selected": selection.trial.number, "selection": selection.reason,
        "winner": best.number, "winner_is_reference": best.number == reference.number,
        "fidelity": "folds" if "fold_scores" in best.user_attrs else "validation split",
        "folds": len(best.user_attrs.get("fold_scores") or []) or None,
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "seconds": round(time.perf_counter() - started, 1),
        **({"overrides": study_overrides(args)} if args.assignments else {}),
        **baselines(spec, latent),
        **(fold_average_columns(study, metric, folder, args.threads) if model in TORCH_MODELS else {}),
    }


def study_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--set KEY=VALUE`` (dotted study-file keys) as overrides of the shipped study."""
    from hpo.study import parse_overrides

    return dict(parse_overrides(args.assignments))


def add_fold_average(row: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A row written before the fold-average columns, with them: its stored study reopened (no new trial)."""
    out: Path = args.out
    folder = out / "studies" / slug(row["cohort"]) / f"seed-{row['seed']}" / row["model"]
    study, _ = run_study(row["model"], {**data_overrides(cohort_files(row["cohort"], out), row["seed"], out),
                                        **row.get("overrides", {})}, folder,
                         args.trials, args.threads)
    from hpo.results import study_selection

    if study_selection(study).trial.number != row["selected"]:
        raise SystemExit(f"{row['cohort']} seed {row['seed']} {row['model']}: the stored study selects another trial "
                         f"than the row ({row['selected']}); rerun it")
    return {**row, **fold_average_columns(study, row["metric"], folder, args.threads)}


def summarise(rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """A Markdown table per cohort and model, the retrain modes compared, and the bars that failed."""
    lines, failures, modes = [], [], []
    header = ("| cohort | model | metric | tuned (selected) | best (no rule) | reference | tuned, fold-average "
              "| reference, fold-average | logistic regression | RBF SVC | PCA "
              "| tuned per split | best per split | reference per split | tuned fold-average per split |")
    lines += [header, "|---" * (header.count("|") - 1) + "|"]
    for cohort in dict.fromkeys(r["cohort"] for r in rows):
        for model in MODELS:
            group = sorted((r for r in rows if r["cohort"] == cohort and r["model"] == model), key=lambda r: r["seed"])
            if not group:
                continue

            def mean(key: str) -> str:
                values = [r[key] for r in group if r.get(key) is not None]
                return f"{np.mean(values):.3f}" if values else "-"

            per_split = lambda key: " ".join("-" if r.get(key) is None else f"{r[key]:.3f}" for r in group)
            classification = model != "autoencoder"
            lines.append(
                f"| {cohort} | {model} | {group[0]['metric']} | {mean('tuned')} | {mean('best_raw')} | {mean('reference')} | "
                f"{mean('tuned_fold_average')} | {mean('reference_fold_average')} | "
                f"{mean('logreg') if classification else '-'} | {mean('svc_rbf') if classification else '-'} | "
                f"{mean('pca')} | {per_split('tuned')} | {per_split('best_raw')} | {per_split('reference')} | "
                f"{per_split('tuned_fold_average')} |"
            )
            failures += bars(cohort, model, group, "tuned", "reference", "schedule retrain")
            if model in TORCH_MODELS and all(r.get("tuned_fold_average") is not None for r in group):
                failures += bars(cohort, model, group, "tuned_fold_average", "reference_fold_average",
                                 "fold-average retrain")
                schedule, average = np.mean([r["tuned"] for r in group]), np.mean([r["tuned_fold_average"] for r in group])
                better = (average < schedule) if model == "autoencoder" else (average > schedule)
                gains = " ".join(f"{r['tuned_fold_average'] - r['tuned']:+.3f}" for r in group)
                modes.append(f"- {cohort} {model}: tuned, schedule {schedule:.4f} vs fold-average {average:.4f} "
                             f"({'fold-average' if better else 'schedule'} better or equal, by {abs(average - schedule):.4f}; "
                             f"per split {gains})")
    if modes:
        lines += ["", "retrain modes (tuned, mean test score over the splits; + means fold-average higher):", *modes]
    return "\n".join(lines), failures


def bars(cohort: str, model: str, group: list[dict[str, Any]], tuned_key: str, reference_key: str,
         label: str) -> list[str]:
    """The bars of issue 19 for one retrain mode: what failed."""
    tuned, reference = [r.get(tuned_key) for r in group], [r.get(reference_key) for r in group]
    if any(v is None for v in tuned + reference):
        return [f"{cohort} {model} ({label}): a split has no tuned or reference result"] if model in ("classifier",
                                                                                                "autoencoder") else []
    failures = []
    if model == "classifier":
        if np.mean(tuned) < np.mean(reference) - 1e-9:
            failures.append(f"{cohort} classifier ({label}): tuned mean {np.mean(tuned):.3f} < reference "
                            f"{np.mean(reference):.3f}")
        for r in group:
            if r[reference_key] - r[tuned_key] > 1.0 / r["n_test"] + 1e-9:
                failures.append(f"{cohort} classifier seed {r['seed']} ({label}): tuned {r[tuned_key]:.3f} more than "
                                f"one test sample (1/{r['n_test']}) behind the reference {r[reference_key]:.3f}")
    if model == "autoencoder" and np.mean(tuned) > np.mean(reference) + 1e-9:
        failures.append(f"{cohort} autoencoder ({label}): tuned MSE {np.mean(tuned):.4f} > reference "
                        f"{np.mean(reference):.4f}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("hpo-runs/small-cohorts"))
    parser.add_argument("--seeds", type=int, default=5, help="split seeds 0..N-1 (default 5)")
    parser.add_argument("--trials", type=int, default=12, help="trials per study, the reference included (default 12)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--cohorts", nargs="+", default=list(COHORTS), choices=list(COHORTS))
    parser.add_argument("--cohort-seeds", nargs="+", type=int, default=None, metavar="SEED",
                        help="fresh cohorts: each shape of --cohorts regenerated with these generator seeds "
                             "(named e.g. '8 tissues (seed 31)') instead of the shipped ones")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the shipped study files (dotted, as hpo run --set), recorded in the rows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one cohort, two split seeds, 6 trials")
    parser.add_argument("--summary", action="store_true",
                        help="only print the tables of OUT/results.jsonl's rows (of --cohorts/--models), run nothing")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.trials, args.cohorts = 2, 6, args.cohorts[:1]
        args.out = args.out.with_name(args.out.name + "-quick")
    if args.cohort_seeds:
        args.cohorts = [cohort_name(shape, seed) for shape in args.cohorts for seed in args.cohort_seeds]
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    warnings.filterwarnings("ignore")
    import optuna
    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "results.jsonl"
    done = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.is_file() else []
    rows = [r for r in done if r["cohort"] in args.cohorts and r["model"] in args.models and r["seed"] < args.seeds]
    if args.summary:
        rows = [r for r in done if r["cohort"] in args.cohorts and r["model"] in args.models]
        args.seeds = len({r["seed"] for r in rows})
    print(f"# small cohorts: {args.seeds} split seeds x {args.trials} trials; {machine()}; {conditions()}", flush=True)
    stale = [] if args.summary else [r for r in rows if r["model"] in TORCH_MODELS and "tuned_fold_average" not in r]
    for row in stale:  # rows written before the fold-average columns: add them (the stored study, no new trial)
        updated = add_fold_average(row, args)
        rows[rows.index(row)] = updated
        done[done.index(row)] = updated
        log_path.write_text("".join(json.dumps(r) + "\n" for r in done))
        print(json.dumps({k: updated[k] for k in ("cohort", "seed", "model", "tuned", "reference", "tuned_fold_average",
                                                  "reference_fold_average", "seconds_fold_average")}), flush=True)
    for seed in range(0 if args.summary else args.seeds):  # seed by seed: an interrupted run has every cohort and model on its first seeds
        for cohort in args.cohorts:
            for model in args.models:
                if any(r["cohort"] == cohort and r["seed"] == seed and r["model"] == model for r in rows):
                    continue
                row = one(cohort, seed, model, args)
                rows.append(row)
                with log_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    table, failures = summarise(rows)
    print(f"\n{time.strftime('%Y-%m-%d')}: {args.seeds} split seeds, {args.trials} trials per study\n")
    print(table)
    print("\nbars: " + ("all met" if not failures else "NOT MET:\n- " + "\n- ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
