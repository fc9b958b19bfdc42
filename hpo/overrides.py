"""``--set key=value`` overrides of study-file keys, parsed as TOML values."""

from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from collections.abc import Iterable, Mapping
from typing import Any

import tomli_w


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """``["data.preset=tiny", "n_trials=4"]`` -> ``{"data.preset": "tiny", "n_trials": 4}``.

    Values are TOML (``4``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``); anything that is not
    valid TOML is taken as a plain string, so ``data.preset=tiny`` works unquoted.
    """
    overrides: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {assignment!r}: expected KEY=VALUE, e.g. --set data.preset=tiny")
        try:
            overrides[key] = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            overrides[key] = text.strip()
    return overrides


def format_overrides(overrides: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The inverse of :func:`parse_overrides` (nested tables become dotted keys)."""
    assignments: list[str] = []
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            assignments.extend(format_overrides(value, prefix=f"{dotted}."))
        else:
            line = tomli_w.dumps({"value": value}).strip()
            assignments.append(f"{dotted}={line.split('=', 1)[1].strip()}")
    return assignments
