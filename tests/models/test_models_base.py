"""The one model base: scikit-learn's estimator contract, declared capabilities, and the save/load template."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.validation import check_is_fitted

from data_pipeline import PreparedDataset
from models import NoEmbeddingError, TissueModel, available_models, build_model, get_spec, load_model
from models.autoencoder import AutoencoderModel
from models.classifier import ClassifierModel
from models.networks import count_parameters
from models.sklearn_models import LogisticRegressionModel
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)

EMBEDDING_MODELS = {"autoencoder", "classifier", "conv_classifier"}
FITTED_DEFAULTS = {
    "history_": (),
    "train_seconds_": 0.0,
    "n_steps_": 0,
    "n_parameters_": 0,
    "best_epoch_": 0,
    "retrain_epochs_": 0,
    "device_": "cpu",
}


@pytest.mark.parametrize("name", available_models())
def test_constructor_arguments_are_the_parameters_get_params_set_params_and_clone_see(name: str) -> None:
    model = build_model(name, device="cpu", seed=4, num_threads=2)
    params = model.get_params()
    assert params == {"params": model.params, "device": "cpu", "seed": 4, "num_threads": 2}
    assert params["params"] is model.params  # stored unchanged, as given
    assert type(model)(**params).get_params() == params  # a round trip through the constructor
    copy = clone(model)
    assert type(copy) is type(model) and copy.get_params() == params and copy.params is not model.params
    assert model.set_params(seed=5, device="auto") is model and (model.seed, model.device) == (5, "auto")
    with pytest.raises(ValueError, match="learning_rate"):
        model.set_params(learning_rate=0.1)


@pytest.mark.parametrize("name", available_models())
def test_an_unfitted_model_reads_the_class_level_fitted_defaults(name: str) -> None:
    model = build_model(name, device="cpu")
    assert {key: getattr(model, key) for key in FITTED_DEFAULTS} == FITTED_DEFAULTS
    assert not [key for key in vars(model) if key.endswith("_")]  # the constructor fitted nothing
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_the_fitted_defaults_are_immutable_and_fit_sets_them_per_instance(tiny_dataset: PreparedDataset) -> None:
    assert all(isinstance(getattr(TissueModel, key), (tuple, int, float, str)) for key in FITTED_DEFAULTS)
    model = build_model("classifier", {"max_epochs": 2}, device="cpu").fit(tiny_dataset)
    check_is_fitted(model)
    assert len(model.history_) == 2 and model.n_steps_ == 2 and 1 <= model.best_epoch_ <= 2
    assert model.n_parameters_ > 0 and model.retrain_epochs_ >= 1 and model.class_weights_ is not None
    assert TissueModel.history_ == () and ClassifierModel.class_weights_ is None  # the class defaults are untouched
    fresh = clone(model)
    assert fresh.network_ is None and fresh.history_ == () and fresh.n_steps_ == 0  # a clone is unfitted


def test_a_subclass_may_not_override_the_constructor() -> None:
    with pytest.raises(TypeError, match="overrides __init__"):

        class Eager(LogisticRegressionModel):
            def __init__(self, params, **options) -> None:
                super().__init__(params, **options)
                self.estimator_ = LogisticRegression()


@pytest.mark.parametrize("name", available_models())
def test_capabilities_are_declared_on_the_class(name: str) -> None:
    model = build_model(name, device="cpu")
    spec = get_spec(name)
    assert isinstance(model, TissueModel)
    assert model.family == spec.family and model.task == spec.task and model.name == name
    expected = name in EMBEDDING_MODELS or name.endswith("_on_embeddings")
    assert model.has_embedding is expected
    assert (type(model).embed is not TissueModel.embed) is expected  # declared exactly where embed is implemented
    if not expected:
        with pytest.raises(NoEmbeddingError, match=f"{name} has no embedding"):
            model.embed(np.zeros((2, 3), dtype=np.float32))
        assert issubclass(NoEmbeddingError, ValueError)  # the CLI reports it in one line


@pytest.mark.parametrize(
    ("name", "params", "files"),
    [
        ("autoencoder", {"hidden_sizes": [16], "latent_dim": 4, "max_epochs": 2}, {"model.json", "weights.pt"}),
        ("logistic_regression", {"max_iter": 50}, {"model.json", "estimator.joblib"}),
    ],
)
def test_save_and_load_round_trip_through_the_template(
    tiny_dataset: PreparedDataset, tmp_path: Path, name: str, params: dict, files: set[str]
) -> None:
    model = build_model(name, params, device="cpu", seed=3).fit(tiny_dataset)
    assert model.save(tmp_path / name) == tmp_path / name
    assert {path.name for path in (tmp_path / name).iterdir()} == files
    record = json.loads((tmp_path / name / "model.json").read_text())
    assert (record["format_version"], record["name"], record["seed"]) == (1, name, 3)
    loaded = type(model).load(tmp_path / name, device="cpu")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert (loaded.n_steps_, loaded.n_parameters_, loaded.device_) == (model.n_steps_, model.n_parameters_, "cpu")
    assert np.array_equal(loaded.predict(tiny_dataset.X_test), model.predict(tiny_dataset.X_test))
    assert loaded.evaluate(tiny_dataset, "val") == model.evaluate(tiny_dataset, "val")


def test_load_checks_the_saved_name_and_save_refuses_an_unfitted_model(tiny_dataset: PreparedDataset, tmp_path) -> None:
    build_model("autoencoder", {"hidden_sizes": [8], "latent_dim": 2, "max_epochs": 1}, device="cpu").fit(
        tiny_dataset
    ).save(tmp_path / "ae")
    with pytest.raises(ValueError, match="holds a 'autoencoder' model, not 'classifier'"):
        ClassifierModel.load(tmp_path / "ae")
    for name in ("classifier", "svc", "svc_on_embeddings"):
        with pytest.raises(RuntimeError, match="not fitted"):
            build_model(name, device="cpu").save(tmp_path / name)
        assert not (tmp_path / name / "model.json").exists()  # no half-written model to load


# -- directories written in today's format (model.json format_version 1), built by hand ----------------------


def write_v1(directory: Path, record: dict) -> None:
    """``model.json`` exactly as the code before the shared base wrote it (``json.dumps(indent=2, sort_keys=True)``)."""
    directory.mkdir(parents=True)
    (directory / "model.json").write_text(json.dumps({"format_version": 1, **record}, indent=2, sort_keys=True))


def write_v1_autoencoder(directory: Path, n_features: int) -> torch.nn.Module:
    params = {**AutoencoderModel.DEFAULTS, "hidden_sizes": [6], "latent_dim": 3}
    torch.manual_seed(0)
    network = AutoencoderModel.build_network(params, n_features, 4).eval()
    write_v1(directory, {"name": "autoencoder", "params": params, "seed": 7, "architecture": params,
                         "n_features": n_features, "n_classes": 4, "n_steps": 5})
    torch.save(network.state_dict(), directory / "weights.pt")
    return network


def test_a_torch_model_in_todays_format_loads(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(10, 12)).astype(np.float32)
    network = write_v1_autoencoder(tmp_path / "ae", n_features=12)
    loaded = load_model(tmp_path / "ae", device="cpu")
    assert isinstance(loaded, AutoencoderModel) and loaded.seed == 7 and loaded.n_steps_ == 5
    assert (loaded.n_features_in_, loaded.n_classes_, loaded.device_) == (12, 4, "cpu")
    assert loaded.n_parameters_ == count_parameters(network)
    with torch.no_grad():
        expected = network(torch.from_numpy(X)).numpy(), network.encode(torch.from_numpy(X)).numpy()
    assert np.allclose(loaded.predict(X), expected[0]) and np.allclose(loaded.embed(X), expected[1])


def test_scikit_learn_models_in_todays_format_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 12)).astype(np.float32), np.repeat([0, 1, 2], 10)
    estimator = LogisticRegression(max_iter=200).fit(X, y)
    write_v1(tmp_path / "lr", {"name": "logistic_regression", "params": dict(get_spec("logistic_regression").defaults),
                               "seed": 0, "n_steps": 1})
    joblib.dump(estimator, tmp_path / "lr" / "estimator.joblib")
    loaded = load_model(tmp_path / "lr", device="cpu")
    assert isinstance(loaded, LogisticRegressionModel) and loaded.n_steps_ == 1
    assert np.array_equal(loaded.predict(X), estimator.predict(X))
    # a model on embeddings: the classifier's estimator beside the autoencoder's own folder
    network = write_v1_autoencoder(tmp_path / "knn" / "autoencoder", n_features=12)
    with torch.no_grad():
        codes = network.encode(torch.from_numpy(X)).numpy()
    knn = KNeighborsClassifier(n_neighbors=3).fit(codes, y)
    (tmp_path / "knn" / "model.json").write_text(json.dumps({
        "format_version": 1, "name": "knn_on_embeddings", "params": dict(get_spec("knn_on_embeddings").defaults),
        "seed": 0, "n_steps": 1,
    }, indent=2, sort_keys=True))
    joblib.dump(knn, tmp_path / "knn" / "estimator.joblib")
    loaded = load_model(tmp_path / "knn", device="cpu")
    assert loaded.name == "knn_on_embeddings" and loaded.n_parameters_ == count_parameters(network)
    assert np.array_equal(loaded.predict(X), knn.predict(codes))
