"""Check and coerce a flat parameter mapping against a model's defaults."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from models.errors import UnknownParameterError


@dataclass(frozen=True)
class Range:
    """Allowed numeric interval of a parameter; ``None`` leaves a side open-ended."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, high_open=True)
"""[0, 1): dropout, label smoothing, momentum."""


def resolve_params(
    model_name: str,
    defaults: Mapping[str, Any],
    params: Mapping[str, Any] | None,
    *,
    choices: Mapping[str, tuple[Any, ...]] | None = None,
    value_types: Mapping[str, tuple[type, ...]] | None = None,
    ranges: Mapping[str, Range] | None = None,
) -> dict[str, Any]:
    """Defaults overridden by ``params``, each value checked against its default's type.

    Raises :class:`UnknownParameterError` for a key the model does not take and
    :class:`ValueError` for a value of the wrong type, outside its choices or outside its range.
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise UnknownParameterError(
            f"model {model_name!r} takes no parameter {unknown[0]!r}"
            f"{' (nor ' + ', '.join(map(repr, unknown[1:])) + ')' if len(unknown) > 1 else ''}; "
            f"allowed: {', '.join(sorted(defaults))}"
        )
    choices = choices or {}
    value_types = value_types or {}
    ranges = ranges or {}
    resolved = dict(defaults)
    for key, value in params.items():
        allowed = value_types.get(key) or (type(defaults[key]),)
        value = _coerce(model_name, key, value, allowed, choices.get(key))
        allowed_range = ranges.get(key)
        if allowed_range is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value not in allowed_range:
                raise ValueError(f"parameter {key!r} of model {model_name!r} = {value!r}; expected {allowed_range}")
        resolved[key] = value
    return resolved


class _Rejected(ValueError):
    """A value of an accepted type that is still wrong; the message says what was expected."""


_NOT_THIS_TYPE = object()


def _is_number(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _to_positive_ints(value: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        return _NOT_THIS_TYPE
    if not all(_is_number(v, numbers.Integral) and v > 0 for v in value):
        raise _Rejected("a list of positive integers")
    return [int(v) for v in value]


_COERCERS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (str, lambda v: v if isinstance(v, str) else _NOT_THIS_TYPE),
    (bool, lambda v: v if isinstance(v, bool) else _NOT_THIS_TYPE),
    (type(None), lambda v: v if v is None else _NOT_THIS_TYPE),
    (int, lambda v: int(v) if _is_number(v, numbers.Integral) else _NOT_THIS_TYPE),
    (float, lambda v: float(v) if _is_number(v, numbers.Real) else _NOT_THIS_TYPE),
    (int, lambda v: int(v) if _is_number(v, numbers.Real) and float(v).is_integer() else _NOT_THIS_TYPE),
    (list, _to_positive_ints),
)
"""Per accepted type, in order of preference: the value as that type, or ``_NOT_THIS_TYPE``.

A bool is never a number here, an integer-valued float is an int only where no float is
accepted, and a tuple is a list."""


def _as_allowed(value: Any, allowed: tuple[type, ...]) -> Any:
    for kind, to_kind in _COERCERS:
        if kind in allowed and (result := to_kind(value)) is not _NOT_THIS_TYPE:
            return result
    return _NOT_THIS_TYPE


def _coerce(
    model_name: str, key: str, value: Any, allowed: tuple[type, ...], key_choices: tuple[Any, ...] | None
) -> Any:
    """``value`` as the first type of :data:`_COERCERS` in ``allowed`` that takes it; strings among ``key_choices``."""
    where = f"parameter {key!r} of model {model_name!r}"
    try:
        coerced = _as_allowed(value, allowed)
        if isinstance(coerced, str) and key_choices is not None and coerced not in key_choices:
            raise _Rejected(f"one of {', '.join(map(repr, key_choices))}")
    except _Rejected as wrong:
        raise ValueError(f"{where} = {value!r}; expected {wrong}") from None
    if coerced is _NOT_THIS_TYPE:
        names = " or ".join(t.__name__ for t in allowed)
        if key_choices is not None and str in allowed:
            names += f" (strings: {', '.join(map(repr, key_choices))})"
        raise ValueError(f"{where} = {value!r} ({type(value).__name__}); expected {names}")
    return coerced
