"""Check a study file's sampler/pruner options against the constructor that will receive them.

A study file is TOML, so an option can only be a string, number, boolean, array or table. Optuna's
constructors also take Python objects (``gamma``, ``weights``, ``constraints_func``, another sampler,
a crossover instance): those a study file cannot give, and a string passed there would only fail
every trial later. :func:`check_options` compares each value with the parameter's annotation (read
from the signature, without importing what the annotation names) and also refuses negative integer
options (counts, sizes, steps) and non-finite numbers, so a bad option is a one-line error before any trial runs.
"""

from __future__ import annotations

import builtins
import collections.abc
import inspect
import math
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any


def accepted_options(constructor: Callable[..., Any]) -> set[str] | None:
    """The keyword options ``constructor`` takes; ``None`` when it takes any (``**kwargs``)."""
    parameters = inspect.signature(constructor).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    return set(parameters)


def check_options(section: str, owner: str, constructor: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (``"sampler.gamma: ..."``) for the first option ``constructor`` cannot take.

    ``section`` is the study-file table (``sampler``/``pruner``), ``owner`` the sampler or pruner name.
    """
    parameters = inspect.signature(constructor).parameters
    namespace = _AnnotationNamespace(sys.modules.get(getattr(constructor, "__module__", ""), None))
    for option, value in options.items():
        parameter = parameters.get(option)
        if parameter is None:
            continue  # unknown names are the caller's check (it lists the allowed ones)
        problem = _problem(value, parameter, namespace, f"{section} {owner!r}")
        if problem:
            raise ValueError(f"{section}.{option}: {problem}")


def _problem(value: Any, parameter: inspect.Parameter, namespace: "_AnnotationNamespace", owner: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    hint = namespace.evaluate(annotation)
    if hint is _UNKNOWN:
        return ""
    shown = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if not _expressible(hint):
        return (
            f"{owner} takes a Python object here ({shown}), which a study file cannot give "
            f"(got {value!r}); leave it out for the default"
        )
    if not _accepts(hint, value):
        return f"expected {shown}, got {value!r}"
    counts = _accepts(hint, 0) and not _accepts(hint, 0.5)  # integer options: counts, sizes, steps
    if counts and _is_int(value) and value < 0 and not _negative_default(parameter.default):
        return f"must be >= 0, got {value}"
    return ""


def _negative_default(default: Any) -> bool:
    """Options whose default is negative (CMA-ES ``inc_popsize=-1``) give a negative value a meaning."""
    return _is_int(default) and default < 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Opaque:
    """Stands for a class an annotation names but this module does not import (``FrozenTrial``)."""

    def __class_getitem__(cls, item: Any) -> type:
        return cls


_UNKNOWN = object()
_FALLBACKS: dict[str, Any] = {
    "Callable": collections.abc.Callable, "Sequence": collections.abc.Sequence,
    "Mapping": collections.abc.Mapping, "Any": Any, "Literal": typing.Literal,
}


class _AnnotationNamespace(dict):
    """Names for evaluating string annotations: the constructor's module, builtins, then placeholders."""

    def __init__(self, module: types.ModuleType | None) -> None:
        super().__init__()
        self._module = vars(module) if module is not None else {}

    def __missing__(self, name: str) -> Any:
        for source in (self._module, vars(builtins), _FALLBACKS):
            if name in source:
                return source[name]
        return type(name, (_Opaque,), {})

    def evaluate(self, annotation: Any) -> Any:
        if not isinstance(annotation, str):
            return annotation
        try:
            return eval(annotation, {"__builtins__": {}}, self)  # noqa: S307 - annotations of installed code
        except Exception:
            return _UNKNOWN


def _parts(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    return typing.get_origin(hint), typing.get_args(hint)


def _expressible(hint: Any) -> bool:
    """Whether some TOML value (string, number, boolean, array, table) fits ``hint``."""
    origin, args = _parts(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_expressible(arg) for arg in args)
    if hint is Any or origin is typing.Literal or hint in (bool, int, float, str):
        return True
    if origin in (list, tuple, collections.abc.Sequence, dict, collections.abc.Mapping) or hint in (list, tuple, dict):
        return True
    return False  # None, callables, classes (samplers, crossovers, FrozenTrial, numpy arrays)


def _accepts(hint: Any, value: Any) -> bool:
    """Whether the TOML ``value`` fits ``hint`` (unknown hint forms accept, so nothing valid is refused)."""
    origin, args = _parts(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in args)
    if hint is Any:
        return True
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(_accepts(a, v) for a, v in zip(args, value))
        item = args[0] if args else Any
        return all(_accepts(item, v) for v in value)
    if origin in (dict, collections.abc.Mapping) or hint is dict:
        if not isinstance(value, dict):
            return False
        key, item = args if len(args) == 2 else (Any, Any)
        return all(_accepts(key, k) and _accepts(item, v) for k, v in value.items())
    if hint is None or hint is type(None):
        return value is None
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True
