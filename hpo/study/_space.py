"""Search spaces: the ``[space]`` table of a study file, parsed once into Optuna distributions.

Each entry of ``[space]`` is one parameter::

    [space.lr]
    type = "float"            # float | int | categorical
    low = 1e-5
    high = 1e-1
    log = true                # or: step = 0.05 (not both)

    [space.optimizer]
    type = "categorical"
    choices = ["adam", "sgd"]

    [space.momentum]          # conditional: only sampled when the condition holds
    type = "float"
    low = 0.0
    high = 0.99
    when = { optimizer = "sgd" }          # or { optimizer = ["sgd", "rmsprop"] }

Categorical choices may be lists (e.g. layer widths ``[[512, 256], [1024]]``); Optuna
stores such choices as JSON strings and :meth:`SearchSpace.suggest` decodes them.
Objectives never hand-code ``suggest_*``: they call :meth:`SearchSpace.suggest`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

PARAMETER_TYPES = ("float", "int", "categorical")
_NUMERIC_KEYS = {"type", "low", "high", "step", "log", "when"}
_CATEGORICAL_KEYS = {"type", "choices", "when"}
_OPTUNA_CHOICE_TYPES = (str, int, float, bool)


class SpaceError(ValueError):
    """One problem in a ``[space]`` entry; ``key`` is the dotted study-file key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Parameter:
    """One searchable parameter and the condition under which it exists."""

    name: str
    distribution: BaseDistribution
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Parameter name -> allowed values; the parameter is sampled only if all hold."""
    json_choices: bool = False
    """Choices are stored as JSON strings (lists/tables as choices) and decoded on suggest."""

    def active(self, values: Mapping[str, Any]) -> bool:
        return all(name in values and values[name] in allowed for name, allowed in self.when.items())

    def decode(self, value: Any) -> Any:
        return json.loads(value) if self.json_choices and isinstance(value, str) else value


@dataclass(frozen=True)
class SearchSpace:
    """Ordered parameters; conditions refer only to earlier parameters or fixed values."""

    parameters: tuple[Parameter, ...] = ()

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution for p in self.parameters}

    def suggest(self, trial: optuna.Trial, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Sample every active parameter through ``trial``; returns decoded values (no fixed ones)."""
        known: dict[str, Any] = dict(fixed or {})
        chosen: dict[str, Any] = {}
        for parameter in self.parameters:
            if not parameter.active(known):
                continue
            value = parameter.decode(_suggest(trial, parameter.name, parameter.distribution))
            known[parameter.name] = value
            chosen[parameter.name] = value
        return chosen

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Decode raw Optuna parameter values (e.g. ``trial.params``) into model parameters."""
        by_name = {p.name: p for p in self.parameters}
        return {k: by_name[k].decode(v) if k in by_name else v for k, v in params.items()}


def decode_trial_params(params: Mapping[str, Any], distributions: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """Model parameters from a stored trial's ``params`` and ``distributions``, without the study file.

    The inverse of the encoding in :func:`_parse_categorical`: a categorical whose choices are all
    JSON text, at least one of them a list or table, had its choices encoded, so its value is decoded.
    """
    decoded = dict(params)
    for name, value in params.items():
        distribution = distributions.get(name)
        if isinstance(distribution, CategoricalDistribution) and _json_encoded(distribution.choices):
            decoded[name] = json.loads(value)
    return decoded


def _json_encoded(choices: tuple[Any, ...]) -> bool:
    try:
        values = [json.loads(c) for c in choices if isinstance(c, str)]
    except ValueError:
        return False
    return len(values) == len(choices) and any(not isinstance(v, _OPTUNA_CHOICE_TYPES) for v in values)


def _suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    assert isinstance(distribution, CategoricalDistribution)
    return trial.suggest_categorical(name, distribution.choices)


def parse_space(
    table: Mapping[str, Any], *, fixed: Mapping[str, Any] | None = None, prefix: str = "space"
) -> tuple[SearchSpace, list[SpaceError]]:
    """Parse a ``[space]`` table; returns the space and every problem found (empty when valid)."""
    problems: list[SpaceError] = []
    parameters: list[Parameter] = []
    fixed = dict(fixed or {})
    seen_choices: dict[str, tuple[Any, ...]] = {}
    for name, entry in table.items():
        key = f"{prefix}.{name}"
        if not isinstance(entry, Mapping):
            problems.append(SpaceError(key, f"expected a table with 'type', got {type(entry).__name__}"))
            continue
        try:
            parameter = _parse_parameter(name, entry, key)
            when = _parse_when(entry.get("when"), key, seen_choices, fixed)
        except SpaceError as error:
            problems.append(error)
            continue
        parameter = Parameter(parameter.name, parameter.distribution, when, parameter.json_choices)
        parameters.append(parameter)
        if isinstance(parameter.distribution, CategoricalDistribution):
            seen_choices[name] = tuple(parameter.decode(c) for c in parameter.distribution.choices)
        else:
            seen_choices[name] = ()
    return SearchSpace(tuple(parameters)), problems


def _parse_parameter(name: str, entry: Mapping[str, Any], key: str) -> Parameter:
    kind = entry.get("type")
    if kind not in PARAMETER_TYPES:
        raise SpaceError(f"{key}.type", f"expected one of {list(PARAMETER_TYPES)}, got {kind!r}")
    allowed = _CATEGORICAL_KEYS if kind == "categorical" else _NUMERIC_KEYS
    for extra in entry:
        if extra not in allowed:
            raise SpaceError(f"{key}.{extra}", f"unknown key for a {kind} parameter; allowed: {sorted(allowed)}")
    if kind == "categorical":
        return _parse_categorical(name, entry, key)
    return Parameter(name, _parse_numeric(kind, entry, key))


def _parse_numeric(kind: str, entry: Mapping[str, Any], key: str) -> BaseDistribution:
    for bound in ("low", "high"):
        if bound not in entry:
            raise SpaceError(f"{key}.{bound}", f"missing (a {kind} parameter needs low and high)")
    low, high = entry["low"], entry["high"]
    step, log = entry.get("step"), entry.get("log", False)
    number = int if kind == "int" else (int, float)
    for label, value in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if isinstance(value, bool) or not isinstance(value, number):
            expected = "an integer" if kind == "int" else "a number"
            raise SpaceError(f"{key}.{label}", f"expected {expected}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SpaceError(f"{key}.{label}", f"must be finite, got {value!r}")
    if not isinstance(log, bool):
        raise SpaceError(f"{key}.log", f"expected true or false, got {log!r}")
    if low > high:
        raise SpaceError(key, f"low > high: low={low}, high={high}")
    if log and low <= 0:
        raise SpaceError(f"{key}.low", f"log scale needs low > 0, got low={low}")
    if log and step is not None:
        raise SpaceError(key, "step and log cannot be combined")
    if step is not None and step <= 0:
        raise SpaceError(f"{key}.step", f"must be > 0, got {step}")
    if step is not None and step > high - low and high > low:
        raise SpaceError(
            f"{key}.step",
            f"step={step} is larger than the range high - low = {high - low:g} (low={low}, high={high}); "
            f"only low would ever be sampled",
        )
    with warnings.catch_warnings():  # a range that is no multiple of step: said once by step_warnings instead
        warnings.filterwarnings("ignore", message="The distribution is specified by", category=UserWarning)
        if kind == "int":
            return IntDistribution(low, high, log=log, step=step or 1)
        return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def step_warnings(table: Mapping[str, Any], space: SearchSpace, prefix: str = "space") -> list[str]:
    """A ``high`` that ``step`` cannot reach from ``low``: Optuna lowers it to the last reachable value."""
    found = []
    for parameter in space:
        distribution, entry = parameter.distribution, table.get(parameter.name, {})
        if isinstance(distribution, (IntDistribution, FloatDistribution)) and distribution.step is not None:
            written = entry.get("high")
            if isinstance(written, (int, float)) and distribution.high < written:
                found.append(
                    f"{prefix}.{parameter.name}.high: {written} is not low + a multiple of step "
                    f"(low={entry.get('low')}, step={entry.get('step')}); the highest value sampled is {distribution.high:g}"
                )
    return found


def _parse_categorical(name: str, entry: Mapping[str, Any], key: str) -> Parameter:
    choices = entry.get("choices")
    if not isinstance(choices, list) or not choices:
        raise SpaceError(f"{key}.choices", f"expected a non-empty list, got {choices!r}")
    json_choices = any(not isinstance(c, _OPTUNA_CHOICE_TYPES) for c in choices)
    if json_choices:
        encoded = tuple(json.dumps(c, sort_keys=True) for c in choices)
    else:
        encoded = tuple(choices)
    if len(set(map(repr, encoded))) != len(encoded):
        raise SpaceError(f"{key}.choices", f"duplicate choices in {choices!r}")
    return Parameter(name, CategoricalDistribution(encoded), json_choices=json_choices)


def _parse_when(
    when: Any, key: str, earlier: Mapping[str, tuple[Any, ...]], fixed: Mapping[str, Any]
) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise SpaceError(f"{key}.when", f"expected a table like {{ optimizer = \"sgd\" }}, got {when!r}")
    condition: dict[str, tuple[Any, ...]] = {}
    for other, allowed in when.items():
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if other in earlier:
            choices = earlier[other]
            bad = [v for v in values if choices and v not in choices]
            if bad:
                raise SpaceError(f"{key}.when.{other}", f"{bad[0]!r} is not one of the choices {list(choices)}")
        elif other not in fixed:
            raise SpaceError(
                f"{key}.when.{other}",
                f"refers to {other!r}, which is neither an earlier [space] parameter nor a fixed parameter",
            )
        condition[other] = values
    return condition
