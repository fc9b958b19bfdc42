"""Cheap, deterministic test functions for comparing samplers without training noise.

Each function is a plain Optuna objective over a mixed search space (floats, log floats, integers,
stepped integers, categorical choices, and in the classifier surrogate a conditional parameter), with a
known optimum and a "good enough" target used for the trials-to-target figure. They cost microseconds,
so many seeds are affordable and differences between samplers are the samplers', not the noise's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna


@dataclass(frozen=True)
class BenchmarkFunction:
    """A named objective with its direction, best possible value and a target to reach."""

    name: str
    description: str
    direction: str
    objective: Callable[[optuna.Trial], float]
    optimum: float
    target: float


def sphere(trial: optuna.Trial) -> float:
    """Five floats in [-5, 5]; minimum 0 at the origin. Smooth and unimodal."""
    return sum(trial.suggest_float(f"x{i}", -5.0, 5.0) ** 2 for i in range(5))


_MODE_PENALTY = {"a": 1.0, "b": 0.0, "c": 2.0}


def rosenbrock_mixed(trial: optuna.Trial) -> float:
    """Rosenbrock's valley over two floats and an integer, plus a log float and a categorical.

    Minimum 0 at x0 = x1 = 1, x2 = 1, lr = 1e-2, mode = "b".
    """
    x0 = trial.suggest_float("x0", -2.0, 2.0)
    x1 = trial.suggest_float("x1", -2.0, 2.0)
    x2 = trial.suggest_int("x2", -2, 2)
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    mode = trial.suggest_categorical("mode", ["a", "b", "c"])
    valley = 100.0 * (x1 - x0**2) ** 2 + (1.0 - x0) ** 2 + 100.0 * (x2 - x1**2) ** 2 + (1.0 - x1) ** 2
    return valley + (math.log10(lr) + 2.0) ** 2 + _MODE_PENALTY[mode]


def rastrigin_mixed(trial: optuna.Trial) -> float:
    """Rastrigin (many local minima) over four floats, two integers (one stepped) and a choice.

    Minimum 0 at all zeros with ``shift`` = 0.
    """
    xs = [trial.suggest_float(f"x{i}", -5.12, 5.12) for i in range(4)]
    xs.append(trial.suggest_int("n0", -5, 5))
    xs.append(trial.suggest_int("n1", -6, 6, step=2))
    shift = trial.suggest_categorical("shift", [0, 1, 2, None])
    value = 10.0 * len(xs) + sum(x * x - 10.0 * math.cos(2.0 * math.pi * x) for x in xs)
    return value + (5.0 if shift is None else 2.5 * shift)


_CHANCE_ACCURACY = 1.0 / 39.0
_ACTIVATION_COST = {"gelu": 0.0, "relu": 0.01, "tanh": 0.05}


def classifier_surrogate(trial: optuna.Trial) -> float:
    """A smooth stand-in for the encoder+MLP tissue classifier's validation accuracy (maximise).

    Same parameters and types as the classifier study, with the interactions that make it hard:
    the best learning rate depends on the optimiser (and, for SGD, on the conditional momentum)
    and on the batch size, the best dropout grows with depth, and a learning rate far too high
    "never learns anything" (chance accuracy, 1/39), as in the original analysis. Best ~0.93.
    """
    lr = trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-7, 1e-2, log=True)
    hidden = trial.suggest_int("hidden_dim", 64, 1024, step=64)
    layers = trial.suggest_int("n_layers", 1, 4)
    dropout = trial.suggest_float("dropout", 0.0, 0.7)
    latent = trial.suggest_categorical("latent_dim", [64, 128, 256, 512])
    activation = trial.suggest_categorical("activation", ["relu", "gelu", "tanh"])
    batch_size = trial.suggest_categorical("batch_size", [32, 64, 128, 256])
    optimizer = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    momentum = trial.suggest_float("momentum", 0.5, 0.99) if optimizer == "sgd" else 0.9

    best_log_lr = (-3.0 if optimizer == "adam" else -1.6) + 0.5 * math.log10(batch_size / 64)
    if optimizer == "sgd":
        best_log_lr -= 2.0 * (momentum - 0.9)
    lr_gap = math.log10(lr) - best_log_lr
    if lr_gap > 1.2:  # diverges: predicts one tissue for everything
        return _CHANCE_ACCURACY
    accuracy = 0.93
    accuracy -= 0.12 * lr_gap**2
    accuracy -= 0.004 * (math.log10(weight_decay) + 4.0) ** 2
    accuracy -= 0.05 * math.log2(hidden / 512) ** 2 / 3.0
    accuracy -= 0.08 * (dropout - 0.1 * layers) ** 2 / 0.25
    accuracy -= 0.02 * abs(layers - 2)
    accuracy -= 0.03 * abs(math.log2(latent / 256)) / 2.0
    accuracy -= _ACTIVATION_COST[activation]
    if optimizer == "sgd":
        accuracy -= 0.01 + 0.2 * (momentum - 0.9) ** 2
    return max(_CHANCE_ACCURACY, min(1.0, accuracy))


FUNCTIONS: dict[str, BenchmarkFunction] = {
    f.name: f
    for f in (
        BenchmarkFunction("sphere", "5 floats, smooth bowl", "minimize", sphere, 0.0, 1.0),
        BenchmarkFunction(
            "rosenbrock-mixed",
            "Rosenbrock valley; floats, int, log float, categorical",
            "minimize",
            rosenbrock_mixed,
            0.0,
            3.0,
        ),
        BenchmarkFunction(
            "rastrigin-mixed",
            "multimodal; floats, ints (one stepped), categorical incl. None",
            "minimize",
            rastrigin_mixed,
            0.0,
            25.0,
        ),
        BenchmarkFunction(
            "classifier-surrogate",
            "stand-in for the classifier study; conditional momentum; accuracy",
            "maximize",
            classifier_surrogate,
            0.93,
            0.90,
        ),
    )
}


def get_function(name: str) -> BenchmarkFunction:
    """The built-in test function called ``name``; LookupError naming the choices otherwise."""
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise LookupError(
            f"unknown test function {name!r}; choose one of {', '.join(FUNCTIONS)}"
        ) from None
