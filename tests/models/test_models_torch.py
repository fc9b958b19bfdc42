"""PyTorch models on the tiny preset: they learn, stop, report, diverge cleanly and reproduce."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest
import torch

from data_pipeline import PreparedDataset
from models import DeviceOutOfMemory, TrainingDiverged, build_model, load_model
from models.registry import torch_model_class
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)

FAST = {"max_epochs": 6}


def fit(name: str, data: PreparedDataset, params: dict | None = None, **options):
    steps: list[tuple[int, dict]] = []
    model = build_model(name, {**FAST, **(params or {})}, device="cpu", seed=options.pop("seed", 0))
    model.fit(data, on_step=lambda step, metrics: steps.append((step, dict(metrics))), **options)
    return model, steps


def test_classifier_defaults_learn_well_above_chance_in_a_few_epochs(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit("classifier", tiny_dataset)
    chance = 1 / tiny_dataset.n_classes
    metrics = model.evaluate(tiny_dataset, "val")
    assert set(metrics) == {"val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss"}
    assert metrics["val_balanced_accuracy"] > 3 * chance
    assert steps[-1][1]["train_loss"] < steps[0][1]["train_loss"]
    # the callback saw what evaluate() reports, plus the training loss
    assert {"val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss", "train_loss"} <= set(steps[0][1])
    predictions = model.predict(tiny_dataset.X_test)
    assert predictions.dtype == np.int64 and predictions.shape == (len(tiny_dataset.y_test),)


def test_conv_classifier_learns_above_chance(tiny_dataset: PreparedDataset) -> None:
    model, _ = fit("conv_classifier", tiny_dataset)
    assert model.evaluate(tiny_dataset, "val")["val_balanced_accuracy"] > 2 / tiny_dataset.n_classes


def test_autoencoder_validation_loss_falls_and_embeds_every_split(tiny_dataset: PreparedDataset) -> None:
    deep = {"latent_dim": 32, "input_noise": 0.1, "n_layers": 1, "init": "random", "lr": 1e-3}
    random_start, random_steps = fit("autoencoder", tiny_dataset, deep)
    losses = [metrics["val_reconstruction_mse"] for _, metrics in random_steps]
    assert losses[-1] < 0.95 * losses[0]
    # the defaults (linear, PCA start) begin and end below what the random deep network reaches
    model, steps = fit("autoencoder", tiny_dataset, {"latent_dim": 32, "input_noise": 0.1})
    assert model.params["n_layers"] == 0 and model.params["init"] == "pca"
    assert steps[0][1]["val_reconstruction_mse"] < min(losses)
    assert model.evaluate(tiny_dataset, "val")["val_reconstruction_mse"] < random_start.evaluate(
        tiny_dataset, "val")["val_reconstruction_mse"]
    metrics = model.evaluate(tiny_dataset, "test")
    assert set(metrics) == {"test_reconstruction_mse", "test_loss"}
    assert model.predict(tiny_dataset.X_val).shape == tiny_dataset.X_val.shape
    assert model.embed_split(tiny_dataset, "train+val").shape == (
        len(tiny_dataset.y_train) + len(tiny_dataset.y_val), 32
    )


def test_callback_sees_every_epoch_and_history_matches(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit("classifier", tiny_dataset, {"max_epochs": 5, "early_stopping_patience": 0})
    assert [step for step, _ in steps] == [1, 2, 3, 4, 5]
    assert model.n_steps_ == 5 and model.history_ == [metrics for _, metrics in steps]
    assert model.train_seconds_ > 0 and model.device_ == "cpu"
    assert model.n_parameters_ == sum(p.numel() for p in model.network_.parameters())


def test_early_stopping_stops_and_restores_the_best_epoch(tiny_dataset: PreparedDataset) -> None:
    # min_delta larger than any possible gain: no epoch after the first counts as an improvement
    model, steps = fit("classifier", tiny_dataset, {"max_epochs": 30, "early_stopping_patience": 2, "min_delta": 10.0})
    assert model.n_steps_ == 3 and len(steps) == 3
    assert model.best_epoch_ == 1
    assert model.evaluate(tiny_dataset, "val")["val_loss"] == pytest.approx(steps[0][1]["val_loss"], rel=1e-5)


def test_training_on_train_plus_val_runs_every_epoch(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit(
        "classifier", tiny_dataset, {"max_epochs": 4, "early_stopping_patience": 1, "min_delta": 10.0},
        train_split="train+val",
    )
    assert model.n_steps_ == 4


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_absurd_learning_rate_raises_training_diverged(tiny_dataset: PreparedDataset, optimizer: str) -> None:
    model = build_model(
        "classifier", {"lr": 1e8, "grad_clip": 0.0, "optimizer": optimizer, "max_epochs": 20}, device="cpu"
    )
    with pytest.raises(TrainingDiverged, match="became (nan|inf)"):
        model.fit(tiny_dataset)
    assert model.network_ is None  # released before raising


def test_exception_from_the_callback_propagates_and_frees_the_network(tiny_dataset: PreparedDataset) -> None:
    class Stop(Exception):
        pass

    model = build_model("classifier", FAST, device="cpu")
    network_refs = []

    def on_step(step: int, metrics: dict) -> None:
        network_refs.append(weakref.ref(model.network_))
        if step == 2:
            raise Stop

    with pytest.raises(Stop) as caught:
        model.fit(tiny_dataset, on_step=on_step)
    assert model.network_ is None
    assert len(model.history_) == 2  # the epochs it saw are kept
    gc.collect()
    # freed while the exception (and its traceback) is still alive: nothing holds the weights
    assert caught.value is not None and network_refs[-1]() is None


def test_an_allocation_the_host_cannot_hold_raises_device_out_of_memory(tiny_dataset: PreparedDataset) -> None:
    # a 1.5 TB first layer: the allocator refuses at once, nothing is touched
    model = build_model("classifier", {"hidden_sizes": [10**9]}, device="cpu")
    with pytest.raises(DeviceOutOfMemory, match="out of host memory.*released"):
        model.fit(tiny_dataset)
    assert model.network_ is None


def test_same_seed_same_metrics_other_seed_other_metrics(tiny_dataset: PreparedDataset) -> None:
    params = {"max_epochs": 3, "input_noise": 0.1}
    first, _ = fit("classifier", tiny_dataset, params, seed=7)
    second, _ = fit("classifier", tiny_dataset, params, seed=7)
    other, _ = fit("classifier", tiny_dataset, params, seed=8)
    assert first.history_ == second.history_
    assert np.array_equal(first.embed(tiny_dataset.X_val), second.embed(tiny_dataset.X_val))
    assert first.history_ != other.history_


@pytest.mark.parametrize("name", ["classifier", "conv_classifier", "autoencoder"])
def test_save_and_load_give_identical_outputs(tiny_dataset: PreparedDataset, tmp_path, name: str) -> None:
    model, _ = fit(name, tiny_dataset, {"max_epochs": 2})
    model.save(tmp_path / name)
    loaded = load_model(tmp_path / name, device="cpu")
    assert type(loaded) is type(model) and loaded.params == model.params
    assert np.array_equal(loaded.predict(tiny_dataset.X_test), model.predict(tiny_dataset.X_test))
    assert np.array_equal(loaded.embed(tiny_dataset.X_test), model.embed(tiny_dataset.X_test))
    assert loaded.evaluate(tiny_dataset, "test") == model.evaluate(tiny_dataset, "test")


def test_classifier_starts_from_a_saved_autoencoder_encoder(tiny_dataset: PreparedDataset, tmp_path) -> None:
    autoencoder, _ = fit("autoencoder", tiny_dataset, {"hidden_sizes": [48], "latent_dim": 24, "max_epochs": 2})
    autoencoder.save(tmp_path / "ae")
    encoder_weights = autoencoder.network_.encoder.state_dict()
    # the classifier's own encoder settings differ: the saved encoder's architecture wins
    model, _ = fit("classifier", tiny_dataset, {"encoder_from": str(tmp_path / "ae"), "freeze_encoder": True})
    assert model.architecture_["hidden_sizes"] == [48] and model.architecture_["latent_dim"] == 24
    for key, value in model.network_.encoder.state_dict().items():
        assert torch.equal(value, encoder_weights[key]), key  # frozen: weights and BatchNorm statistics
    assert model.evaluate(tiny_dataset, "val")["val_balanced_accuracy"] > 1 / tiny_dataset.n_classes
    # a reloaded classifier rebuilds the saved encoder's architecture without the autoencoder
    model.save(tmp_path / "clf")
    assert np.array_equal(load_model(tmp_path / "clf").predict(tiny_dataset.X_val), model.predict(tiny_dataset.X_val))


def test_freezing_without_a_trained_encoder_keeps_the_random_encoder(tiny_dataset: PreparedDataset) -> None:
    untrained = build_model("classifier", {"max_epochs": 1}, device="cpu", seed=3)
    untrained.fit(tiny_dataset)  # the encoder weights a seed-3 run starts from, after one epoch
    model, _ = fit("classifier", tiny_dataset, {"freeze_encoder": True, "max_epochs": 2}, seed=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)  # fit seeds this way right before building the network
        initial = torch_model_class("classifier").build_network(model.architecture_, model.n_features_in_, model.n_classes_)
    assert torch.equal(model.network_.encoder.latent.weight, initial.encoder.latent.weight)
    assert not torch.equal(untrained.network_.encoder.latent.weight, initial.encoder.latent.weight)


def test_pretraining_fine_tunes_the_encoder(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit("classifier", tiny_dataset, {"pretrain_epochs": 2, "max_epochs": 3})
    assert len(steps) == 3  # pretraining epochs are not classifier steps
    assert all(p.requires_grad for p in model.network_.encoder.parameters())


def test_class_weights_and_regularisers_train(tiny_dataset: PreparedDataset) -> None:
    params = {
        "class_weight": "none", "label_smoothing": 0.1, "l1_penalty": 1e-5, "optimizer": "sgd", "lr": 0.05,
        "scheduler": "plateau", "batch_norm": False, "activation": "gelu", "n_layers": 2, "monitor": "val_macro_f1",
    }
    model, steps = fit("classifier", tiny_dataset, params)
    assert steps[-1][1]["train_loss"] < steps[0][1]["train_loss"]


def test_bf16_autocast_trains_on_cpu(tiny_dataset: PreparedDataset) -> None:
    model, steps = fit("classifier", tiny_dataset, {"precision": "bf16", "max_epochs": 2, "early_stopping_patience": 0})
    assert all(np.isfinite(m["val_loss"]) for _, m in steps)
    # validation runs in full precision, so the callback saw what evaluate() reports
    assert steps[-1][1]["val_loss"] == model.evaluate(tiny_dataset, "val")["val_loss"]


def test_unknown_split_and_unfitted_model_fail_clearly(tiny_dataset: PreparedDataset) -> None:
    model = build_model("classifier", FAST, device="cpu")
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(tiny_dataset.X_val)
    with pytest.raises(ValueError, match="device"):
        build_model("classifier", FAST, device="tpu").fit(tiny_dataset)
    with pytest.raises(ValueError, match="unknown split"):
        model.fit(tiny_dataset, train_split="everything")


def test_read_only_memory_mapped_arrays_train_without_warnings(tiny_dataset: PreparedDataset) -> None:
    assert not tiny_dataset.X_train.flags.writeable  # the cache is memory-mapped read-only
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
        model, _ = fit("autoencoder", tiny_dataset, {"max_epochs": 1, "latent_dim": 8})
    assert model.n_steps_ == 1
