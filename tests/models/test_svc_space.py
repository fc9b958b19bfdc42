"""The linear SVC's C: flat above the hard-margin dual coefficients, so the shipped study searches linear_C below."""

from __future__ import annotations

import numpy as np

from data_pipeline import PreparedDataset
from hpo.study import load_study_file
from models import build_model
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)

STUDIES = __import__("pathlib").Path(__file__).resolve().parents[2] / "studies"


def _decision(data: PreparedDataset, **params) -> np.ndarray:
    model = build_model("svc", {"class_weight": "balanced", **params}, num_threads=1).fit(data)
    return model.estimator_.decision_function(np.asarray(data.X_val))


def test_a_linear_svc_is_the_same_model_for_every_large_c_and_linear_c_reaches_below(tiny_dataset: PreparedDataset):
    high = [_decision(tiny_dataset, kernel="linear", C=c) for c in (1.0, 1e3)]
    assert np.allclose(high[0], high[1])  # the old search range: one model
    space = load_study_file(STUDIES / "svc.toml").space
    linear = next(p.distribution for p in space if p.name == "linear_C")
    grid = np.geomspace(linear.low, linear.high, 5)
    models = [_decision(tiny_dataset, kernel="linear", linear_C=c) for c in grid]
    distinct = {tuple(np.round(m.ravel(), 6)) for m in models}
    assert len(distinct) >= 4  # the searched range changes the model almost everywhere
    # linear_C is the linear kernel's alone: an RBF model ignores it
    assert np.allclose(_decision(tiny_dataset, kernel="rbf", linear_C=1e-5), _decision(tiny_dataset, kernel="rbf"))
