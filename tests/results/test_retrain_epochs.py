"""How long a retrain on train+val runs, and when a validation split is too small to rank trials."""

from __future__ import annotations

import pytest

from data_pipeline import PreparedDataset
from hpo.study import small_val_split_warning
from models import build_model
from models.training import MIN_RETRAIN_EPOCHS, retrain_epoch_count, tied_best_epochs
from tests.support.models_support import one_torch_thread  # noqa: F401  (autouse)


def history(monitor: str, values: list[float]) -> list[dict[str, float]]:
    return [{monitor: value, "train_loss": 1.0 / epoch} for epoch, value in enumerate(values, start=1)]


def test_a_saturated_metric_retrains_for_the_median_of_its_tied_epochs_not_the_first():
    # validation accuracy reaches 1.0 at epoch 3 and stays there until early stopping ends the run
    curve = history("val_accuracy", [0.4, 0.8] + [1.0] * 9 + [0.9])
    tied = tied_best_epochs(curve, "val_accuracy", "max")
    assert tied == list(range(3, 12))
    assert retrain_epoch_count(tied, max_epochs=50) == 7  # not 3, the epoch early stopping kept
    assert retrain_epoch_count([3, 4, 9, 10], max_epochs=50) == 9  # even count: the later middle epoch


def test_ties_are_within_min_delta_and_losses_are_minimised():
    curve = history("val_loss", [1.0, 0.5, 0.3, 0.3004, 0.35, 0.3001])
    assert tied_best_epochs(curve, "val_loss", "min") == [3]
    assert tied_best_epochs(curve, "val_loss", "min", min_delta=0.001) == [3, 4, 6]
    assert tied_best_epochs(history("val_loss", [float("nan"), 0.2]), "val_loss") == [2]
    assert tied_best_epochs([{"train_loss": 1.0}], "val_loss") == []


def test_retrain_never_runs_fewer_than_the_floor_nor_more_than_max_epochs():
    assert retrain_epoch_count([1], max_epochs=50) == MIN_RETRAIN_EPOCHS == 5
    assert retrain_epoch_count(2, max_epochs=3) == 3  # the floor is capped at the budget
    assert retrain_epoch_count([30, 31, 32], max_epochs=31) == 31
    assert retrain_epoch_count([], max_epochs=8) == 5


def test_a_classifier_keeps_the_first_tied_epoch_and_records_the_median_for_retraining(tiny_dataset: PreparedDataset):
    # accuracy on 27 validation samples moves in steps of 1/27: several epochs reach the best value
    params = {"monitor": "val_accuracy", "max_epochs": 20, "early_stopping_patience": 6, "lr": 0.01,
              "hidden_dim": 32, "latent_dim": 16}
    model = build_model("classifier", params, device="cpu").fit(tiny_dataset)
    tied = tied_best_epochs(model.history_, "val_accuracy", "max")
    assert len(tied) > 1
    # among the epochs reaching the best value, early stopping kept the one with the lowest validation loss
    losses = {epoch: model.history_[epoch - 1]["val_loss"] for epoch in tied}
    assert model.best_epoch_ == min(tied, key=lambda epoch: (losses[epoch], epoch))
    assert model.retrain_epochs_ == retrain_epoch_count(tied, 20)
    on_train_and_val = build_model("classifier", params, device="cpu").fit(tiny_dataset, train_split="train+val")
    assert on_train_and_val.retrain_epochs_ == 0  # no validation split: nothing to recommend


def test_a_tiny_validation_split_is_named_in_one_line():
    warning = small_val_split_warning(9, 8, can_cross_validate=True)
    assert warning == (
        "validation split has 9 samples over 8 tissues: ties are likely; "
        'consider fidelity = "folds" or a larger val_fraction'
    )
    assert "\n" not in warning
    assert small_val_split_warning(9, 8).endswith("consider a larger val_fraction")  # torch: no folds fidelity
    assert small_val_split_warning(60, 30) is not None  # 2 per tissue
    assert small_val_split_warning(49, 4) is not None  # too few overall


@pytest.mark.parametrize(("n_val", "n_tissues"), [(210, 39), (50, 16), (300, 6)])
def test_a_large_validation_split_gives_no_warning(n_val: int, n_tissues: int):
    assert small_val_split_warning(n_val, n_tissues, can_cross_validate=True) is None
