"""The model registry: names, parameter checking, specs, memory estimates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import (
    UnknownParameterError,
    available_models,
    build_model,
    count_parameters,
    estimate_memory,
    get_spec,
)
from models.base import TissueModel
from models.networks import ACTIVATIONS
from models.params import resolve_params
from models.registry import _MODEL_CLASSES, torch_model_class
from models.sklearn_models import SVCModel
from models.specs import ACTIVATION_NAMES
from models.torch_model import TorchModel

REQUIRED = {
    "autoencoder",
    "classifier",
    "conv_classifier",
    "svc",
    "random_forest",
    "knn",
    "logistic_regression",
    "kpca_svc",
    "svc_on_embeddings",
}
NO_EMBED = {"svc", "random_forest", "knn", "logistic_regression", "kpca_svc"}


def test_every_model_class_takes_its_metadata_from_its_spec() -> None:
    """models/specs.py (read without torch by the launcher and export) is the one source: the class attributes ARE
    its spec's fields, the PyTorch classes are the torch family, and the docstring opens with the description."""
    assert list(_MODEL_CLASSES) == available_models()
    for name, cls in _MODEL_CLASSES.items():
        spec = get_spec(name)
        assert cls.spec is spec, name
        assert (cls.family, cls.task) == (spec.family, spec.task), name
        assert cls.DEFAULTS is spec.defaults and cls.CHOICES is spec.choices, name
        assert cls.VALUE_TYPES is spec.value_types and cls.RANGES is spec.ranges, name
        assert issubclass(cls, TorchModel) == (spec.family == "torch"), name
        assert (cls.__doc__ or "").strip().splitlines()[0] == spec.description, name


def test_a_model_class_cannot_declare_what_its_spec_says() -> None:
    with pytest.raises(TypeError, match="declares DEFAULTS: they come from its spec"):
        type("Redeclared", (SVCModel,), {"name": "svc", "DEFAULTS": {"C": 1.0}})
    with pytest.raises(ValueError, match="unknown model 'unlisted'"):
        type("Unlisted", (SVCModel,), {"name": "unlisted"})


def test_the_activation_choices_are_the_activations_the_networks_build() -> None:
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


def test_every_required_model_is_registered_with_a_complete_spec() -> None:
    names = available_models()
    assert REQUIRED <= set(names)
    for name in names:
        spec = get_spec(name)
        assert spec.family in ("torch", "sklearn")
        assert spec.task in ("classification", "reconstruction")
        assert spec.description
        # the defaults are a complete, valid parameter set: passing them all back is accepted unchanged
        model = build_model(name, dict(spec.defaults), device="cpu")
        assert model.params == dict(spec.defaults)
        assert isinstance(model, TissueModel)
        assert hasattr(model, "save") and (spec.task == "reconstruction" or hasattr(model, "embed") or name in NO_EMBED)


def test_every_numeric_parameter_has_a_range_that_holds_its_default() -> None:
    for name in available_models():
        spec = get_spec(name)
        for key, default in spec.defaults.items():
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert key in spec.ranges, f"{name}.{key} has no range"
                assert default in spec.ranges[key], f"{name}.{key} default {default} outside {spec.ranges[key]}"


def test_embedding_models_take_prefixed_autoencoder_parameters() -> None:
    spec = get_spec("svc_on_embeddings")
    assert spec.defaults["ae_latent_dim"] == get_spec("autoencoder").defaults["latent_dim"]
    assert "C" in spec.defaults and "ae_max_epochs" in spec.defaults


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'transformer'.*classifier.*svc"):
        get_spec("transformer")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer")


def test_unknown_parameter_names_the_key_and_the_allowed_ones() -> None:
    with pytest.raises(UnknownParameterError, match=r"'learning_rate'.*allowed: .*\blr\b"):
        build_model("classifier", {"learning_rate": 0.1})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("classifier", {"lr": "fast"}, "'lr'.*expected float"),
        ("classifier", {"batch_norm": 1}, "'batch_norm'.*expected bool"),
        ("classifier", {"n_layers": 1.5}, "'n_layers'.*expected int"),
        ("classifier", {"hidden_sizes": [256, -1]}, "positive integers"),
        ("classifier", {"activation": "swish2"}, "'activation'.*one of"),
        ("svc", {"kernel": "cubic"}, "'kernel'.*one of"),
        ("svc", {"gamma": "sometimes"}, "'gamma'"),
        ("classifier", {"dropout": 1.0}, r"'dropout'.*expected \[0, 1\)"),
        ("classifier", {"lr": 0.0}, "'lr'.*expected > 0"),
        ("svc", {"gamma": -0.1}, "'gamma'.*expected > 0"),
        ("svc_on_embeddings", {"ae_latent_dim": 0}, "'ae_latent_dim'.*expected >= 1"),
    ],
)
def test_wrong_values_are_rejected_with_the_parameter_named(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(name, params)


def test_values_are_coerced_to_the_parameter_type() -> None:
    model = build_model("classifier", {"lr": 1, "n_layers": 2.0, "hidden_sizes": (64, 32)})
    assert model.params["lr"] == 1.0 and isinstance(model.params["lr"], float)
    assert model.params["n_layers"] == 2 and isinstance(model.params["n_layers"], int)
    assert model.params["hidden_sizes"] == [64, 32]
    # SVC gamma takes a float as well as 'scale'/'auto'
    assert build_model("svc", {"gamma": 0.01}).params["gamma"] == 0.01


@pytest.mark.parametrize("name", ["autoencoder", "classifier", "conv_classifier"])
def test_memory_estimate_counts_exactly_the_parameters_of_the_built_network(name: str) -> None:
    params = {"hidden_sizes": [64, 32], "latent_dim": 16} if name != "conv_classifier" else {"conv_channels": 4}
    estimate = estimate_memory(name, params, n_features=300, n_classes=7, n_samples=100)
    resolved = build_model(name, params).params
    network = torch_model_class(name).build_network(resolved, 300, 7)
    assert estimate.parameters == count_parameters(network) == sum(p.numel() for p in network.parameters())
    assert estimate.weights_bytes == 4 * estimate.parameters
    assert estimate.optimizer_bytes == 2 * estimate.weights_bytes  # AdamW: two moments
    assert estimate.data_bytes == 100 * 300 * 4
    assert estimate.checkpoint_bytes == estimate.weights_bytes  # early stopping keeps the best weights
    assert estimate.total_bytes == (
        estimate.weights_bytes + estimate.gradient_bytes + estimate.optimizer_bytes
        + estimate.checkpoint_bytes + estimate.activation_bytes + estimate.data_bytes
    )


def test_memory_estimate_scales_with_batch_size_and_precision() -> None:
    small = estimate_memory("classifier", {"batch_size": 16}, 1000, 10)
    large = estimate_memory("classifier", {"batch_size": 64}, 1000, 10)
    bf16 = estimate_memory("classifier", {"batch_size": 64, "precision": "bf16"}, 1000, 10)
    sgd = estimate_memory("classifier", {"optimizer": "sgd"}, 1000, 10)
    assert large.activation_bytes == 4 * small.activation_bytes
    assert bf16.activation_bytes * 2 == large.activation_bytes
    assert sgd.optimizer_bytes * 2 == large.optimizer_bytes


def test_memory_estimate_at_full_size_needs_no_memory_and_is_plausible() -> None:
    estimate = estimate_memory("autoencoder", {"n_layers": 1}, n_features=18_000, n_classes=39)
    first_layer = 18_000 * 1024 + 1024
    assert estimate.parameters > 2 * first_layer  # encoder and mirrored decoder
    linear = estimate_memory("autoencoder", None, n_features=18_000, n_classes=39)  # the default: no hidden layer
    assert linear.parameters == 2 * 18_000 * 512 + 512 + 18_000
    assert 0.1e9 < estimate.total_bytes < 2e9
    assert torch.empty(0).device.type == "cpu"  # the meta device did not leak into the default
    embeddings = estimate_memory("svc_on_embeddings", {"ae_latent_dim": 64}, 500, 5)
    assert embeddings.parameters == estimate_memory("autoencoder", {"latent_dim": 64}, 500, 5).parameters
    assert estimate_memory("svc", None, 500, 5).parameters == 0


@pytest.mark.parametrize(
    ("default", "value", "value_types", "expected"),
    [
        (1, np.int64(3), None, 3),  # numpy integers are ints
        (1, 4.0, None, 4),  # an integer-valued float is an int where no float is accepted ...
        (0.5, 4, ("str", "float"), 4.0),  # ... and stays a float where one is
        ([8], (2, 3), None, [2, 3]),  # a tuple is a list
        (False, True, None, True),
    ],
)
def test_coercion_picks_the_accepted_type(default, value, value_types, expected) -> None:
    types = {"x": tuple({"str": str, "float": float}[t] for t in value_types)} if value_types else None
    resolved = resolve_params("m", {"x": default}, {"x": value}, value_types=types)["x"]
    assert resolved == expected and type(resolved) is type(expected)


@pytest.mark.parametrize(
    ("default", "value", "message"),
    [
        (1.0, True, r"'x' of model 'm' = True \(bool\); expected float$"),  # a bool is never a number
        (1, "3", r"= '3' \(str\); expected int$"),
        ("scale", [1], r"= \[1\] \(list\); expected str \(strings: 'scale', 'auto'\)$"),
        ("scale", "sometimes", r"= 'sometimes'; expected one of 'scale', 'auto'$"),
    ],
)
def test_coercion_errors_name_the_value_and_what_was_expected(default, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_params("m", {"x": default}, {"x": value}, choices={"x": ("scale", "auto")})
