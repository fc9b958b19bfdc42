"""Why the autoencoder reconstructed nothing on small cohorts: autoencoder configurations trained directly.

    python benchmarks/autoencoder_start.py '[{"n_layers": 1, "init": "random", "lr": 1e-3}, {}]'

Each configuration (a JSON list of parameter overrides of the registry defaults; ``fidelity`` none) is trained
on the training split of the two shipped small cohorts of ``small_cohorts.py`` (split seeds 0 and 1), early
stopping on the validation split, one torch thread. Prints validation and test reconstruction MSE, best epoch,
epochs run and seconds, next to PCA fitted on the same training rows (64 and 8 components, capped by the rows).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str]) -> None:
    import numpy as np
    import torch
    from sklearn.decomposition import PCA

    from benchmarks.small_cohorts import STUDIES, cohort_files, data_overrides
    from data_pipeline import prepare_dataset
    from hpo.study import load_study_file
    from models.autoencoder import AutoencoderModel
    from models.registry import resolve_model_params

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    out = Path(argv[1]) if len(argv) > 1 else Path("hpo-runs/autoencoder-start")
    configs = json.loads(argv[0])
    for cohort in ("8 tissues", "4 tissues"):
        for seed in (0, 1):
            spec = load_study_file(STUDIES / "autoencoder.toml", data_overrides(cohort_files(cohort, out), seed, out))
            data = prepare_dataset(spec.data)
            X = np.asarray(data.X_train, dtype=np.float64)
            pcas = {}
            for k in (64, 8):
                pca = PCA(min(k, len(X) - 1)).fit(X)
                pcas[k] = [float(np.mean((pca.inverse_transform(pca.transform(Z)) - Z) ** 2))
                           for Z in (np.asarray(data.X_val, float), np.asarray(data.X_test, float))]
            print(cohort, seed, X.shape, "PCA-64 val/test %.4f %.4f" % tuple(pcas[64]),
                  "PCA-8 %.4f %.4f" % tuple(pcas[8]), flush=True)
            for config in configs:
                model = AutoencoderModel(resolve_model_params("autoencoder", {"fidelity": "none", **config}),
                                         seed=0, num_threads=1)
                started = time.perf_counter()
                model.fit(data, train_split="train")
                val = model.evaluate(data, "val")["val_reconstruction_mse"]
                test = model.evaluate(data, "test")["test_reconstruction_mse"]
                print(f"   {json.dumps(config)}: val {val:.4f} test {test:.4f} best epoch {model.best_epoch_} "
                      f"of {model.n_steps_}, {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
