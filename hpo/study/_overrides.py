"""``--set KEY=VALUE``: one grammar for every command (study-file keys and model parameters alike).

The value is a TOML literal (``4``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``, ``{ a = 1 }``); anything
that is not valid TOML is taken as a plain string, so ``data.preset=tiny`` works unquoted. TOML has no
null: ``x=null`` is the string ``"null"``.
"""

from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import tomli_w

from hpo.samplers import accepted_options

logger = logging.getLogger(__package__)

DEFAULT_NAMES = {"sampler": "tpe", "pruner": "median"}
"""The study-file sections whose ``name`` picks a class, with the name used when none is given."""


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """``"lr=3e-4"`` -> ``("lr", 3e-4)``: the value as a TOML literal, else as a plain string."""
    key, sep, text = assignment.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key:
        raise ValueError(f"--set {assignment!r}: expected KEY=VALUE, e.g. --set data.preset=tiny")
    try:
        return key, tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return key, text
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ValueError(f"--set {key}: too deeply nested: {text[:12]}... nests arrays or tables hundreds of levels deep") from None


def parse_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """``["data.preset=tiny", "n_trials=4"]`` -> ``{"data.preset": "tiny", "n_trials": 4}`` (:func:`parse_assignment`)."""
    return dict(parse_assignment(assignment) for assignment in assignments)


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


def drop_options_of_replaced(
    content: Mapping[str, Any], merged: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """``merged`` without the file's sampler/pruner options that a new ``--set X.name`` cannot take.

    ``--set pruner.name=none`` on a file with ``[pruner] name = "median"`` and
    ``n_warmup_steps = 5`` would otherwise fail on an option that belonged to the old pruner.
    Options the new class accepts, and options given by ``overrides`` themselves, stay. Each dropped
    option is noted in the log.
    """
    result = dict(merged)
    for section, default in DEFAULT_NAMES.items():
        nested = overrides.get(section)
        nested = nested if isinstance(nested, Mapping) else {}
        if f"{section}.name" not in overrides and "name" not in nested:
            continue
        old_table, new_table = content.get(section), merged.get(section)
        if not isinstance(old_table, Mapping) or not isinstance(new_table, Mapping):
            continue
        old_name, new_name = old_table.get("name", default), new_table.get("name", default)
        accepted = _accepted_options(section, new_name)
        if old_name == new_name or accepted is None:
            continue
        given = {key.split(".", 1)[1] for key in overrides if key.startswith(f"{section}.")} | set(nested)
        dropped = sorted(key for key in old_table if key not in given and key not in accepted)
        if dropped:
            logger.info(
                "note: %s.name=%s drops %s's options %s from the study file (%s %r does not take them)",
                section, new_name, old_name, ", ".join(dropped), section, new_name,
            )
            result[section] = {key: value for key, value in new_table.items() if key not in dropped}
    return result


def _accepted_options(section: str, name: Any) -> set[str] | None:
    """Keys a ``[section]`` table may hold for the class ``name``; ``None`` if unknown (validation says so)."""
    try:
        if section == "sampler":
            from hpo.samplers import sampler_class

            cls = sampler_class(str(name))
        else:
            from hpo.samplers import PRUNERS, canonical_pruner_name

            cls = PRUNERS[canonical_pruner_name(str(name))]
    except (ValueError, ImportError):
        return None
    accepted = accepted_options(cls)
    if accepted is None:
        return None
    return accepted | ({"name", "seed"} if section == "sampler" else {"name"})
