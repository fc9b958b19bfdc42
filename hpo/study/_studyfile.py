"""Study files: one TOML file per study, validated completely before any trial runs.

A study file names the model, the metric and its direction, the search space
(:mod:`hpo.space`), fixed parameters, sampler, pruner, trial budget, data settings,
device and heartbeat settings. Every problem is reported with the file and the
dotted key (``studies/x.toml: space.lr: low > high: low=3, high=1``).
See the README section "Study files" for the full reference.
"""

from __future__ import annotations

import difflib
import math
import os
import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpo.storage import DEFAULT_OUTAGE_WINDOW_S, OUTAGE_WINDOW_ENV
from hpo.study._overrides import drop_options_of_replaced
from hpo.study._space import SearchSpace, parse_space, step_warnings

TOP_LEVEL_KEYS = (
    "name", "description", "model", "metric", "direction", "n_trials", "timeout",
    "max_failed_trials", "device", "seed", "reference", "fixed", "space", "sampler", "pruner", "data", "heartbeat", "storage",
)
REQUIRED_KEYS = ("name", "model", "metric", "direction", "space", "data")
DIRECTIONS = {"maximize": "maximize", "maximise": "maximize", "minimize": "minimize", "minimise": "minimize"}
METRICS = {
    "classification": ("val_balanced_accuracy", "val_accuracy", "val_macro_f1", "val_loss"),
    "reconstruction": ("val_reconstruction_mse",),
}
LOWER_IS_BETTER = ("_loss", "_mse")
HEARTBEAT_KEYS = ("interval", "grace_period", "max_retry")
DEFAULT_HEARTBEAT = {"interval": 10, "grace_period": 30, "max_retry": 3}
STORAGE_KEYS = ("outage_window_s",)
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
MAX_NAME_LENGTH = 128
"""Study names also name lock files (``optuna.db.NAME.lock``), which must fit a file system's 255 bytes."""
SEED_LIMIT = 2**32


class StudyFileError(ValueError):
    """A study file is missing, unreadable or invalid; one line per problem, with file and key."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        super().__init__("\n".join(f"{self.path}: {problem}" for problem in self.problems))


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerSpec:
    name: str = "median"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HeartbeatSpec:
    interval: int = DEFAULT_HEARTBEAT["interval"]
    grace_period: int = DEFAULT_HEARTBEAT["grace_period"]
    max_retry: int = DEFAULT_HEARTBEAT["max_retry"]


@dataclass(frozen=True)
class StorageSpec:
    outage_window_s: float = DEFAULT_OUTAGE_WINDOW_S
    """How long workers and ``hpo run`` retry an unreachable storage before they stop (:mod:`hpo.outage`)."""


@dataclass(frozen=True)
class StudySpec:
    """A validated study file."""

    name: str
    model: str
    metric: str
    direction: str
    space: SearchSpace
    fixed: dict[str, Any]
    sampler: SamplerSpec
    pruner: PrunerSpec
    data: Any
    """The validated :class:`data_pipeline.DataConfig`."""
    data_settings: dict[str, Any]
    """The ``[data]`` table as written (after overrides)."""
    n_trials: int | None = None
    timeout: float | None = None
    max_failed_trials: int | None = None
    device: str = "auto"
    seed: int = 0
    """Seed for model initialisation and data order in every trial (samplers have their own)."""
    reference: bool = True
    """Enqueue the model's defaults (clipped into the space) as the study's first trial, the reference."""
    heartbeat: HeartbeatSpec = field(default_factory=HeartbeatSpec)
    storage: StorageSpec = field(default_factory=StorageSpec)
    description: str = ""
    path: str = ""
    text: str = ""
    """The study file's text as read, stored in the study for provenance."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The overrides (``--set``, ``--n-trials`` ...) applied to ``text``: together they are the study that runs."""
    warnings: tuple[str, ...] = ()
    """Valid but doubtful settings (``sampler.name: ...``), shown by ``hpo run`` before it starts."""

    @property
    def failure_cap(self) -> int:
        """How many failed trials end the study: ``max_failed_trials``, else max(10, n_trials)."""
        if self.max_failed_trials is not None:
            return self.max_failed_trials
        return max(10, self.n_trials or 0)


def load_study_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> StudySpec:
    """Read, override and validate a study file.

    ``overrides`` maps dotted keys (``"data.preset"``, ``"n_trials"``) or nested tables
    onto the file's content before validation. Raises :class:`StudyFileError`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(path, ["no such study file"]) from None
    except UnicodeDecodeError as error:
        raise StudyFileError(
            path, [f"not a text file: byte {error.object[error.start:error.start + 1]!r} at offset {error.start} is not UTF-8"]
        ) from None
    except OSError as error:
        raise StudyFileError(path, [f"cannot read: {error.strerror or error}"]) from None
    try:
        content = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise StudyFileError(path, [f"not valid TOML: {error}"]) from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise StudyFileError(path, [deep_nesting(text)]) from None
    if _nesting_depth(content) > MAX_NESTING:
        raise StudyFileError(path, [deep_nesting(text)])
    if isinstance(content.get("data"), dict):
        # The file's own paths are relative to the file; overrides (command line) to the current directory.
        from data_pipeline.config import resolve_relative_paths

        content["data"] = resolve_relative_paths(content["data"], path.absolute().parent)
    merged = apply_overrides(content, overrides or {})
    merged = drop_options_of_replaced(content, merged, overrides or {})
    return replace(parse_study(merged, path=path, text=text), overrides=dict(overrides or {}))


MAX_NESTING = 64
"""Levels of tables and arrays a study file may nest (the deepest shipped file needs 4; tomllib itself fails near 300)."""


def _nesting_depth(value: Any) -> int:
    """How deeply tables and arrays nest in parsed TOML (iterative: any depth)."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def deep_nesting(text: str) -> str:
    """Where ``text`` nests tables and arrays too deeply: the dotted key, the depth and the line it starts on.

    Counts as :func:`_nesting_depth` does (the document, its tables, then arrays and inline tables).
    """
    depth, deepest, line, table, key, base, tables, where = 0, 0, 1, "", "", 1, 0, None
    quote, index, n = "", 0, len(text)
    while index < n:
        char = text[index]
        if quote:
            if char == "\\" and quote[0] == '"':
                index += 2
                continue
            if text.startswith(quote, index):
                index += len(quote)
                quote = ""
                continue
            line += char == "\n"
        elif text.startswith(('"""', "'''"), index):
            quote = text[index:index + 3]
            index += 3
            continue
        elif char in "\"'":
            quote = char
        elif char == "#":
            end = text.find("\n", index)
            index = n if end < 0 else end
            continue
        elif char == "[" and depth == 0 and not text[text.rfind("\n", 0, index) + 1:index].strip():
            end = text.find("\n", index)
            header = text[index:n if end < 0 else end].split("#")[0].strip()
            table = header.strip("[]").strip()
            tables = 1 + table.count(".") + header.startswith("[[")  # an array of tables is one level more
            index = n if end < 0 else end
            continue
        elif char in "[{":
            depth += 1
            if base + depth > MAX_NESTING and where is None:
                where = (line, f"{table}.{key}" if table else key)
            deepest = max(deepest, base + depth)
        elif char in "]}":
            depth -= 1
        elif char == "=" and depth == 0:
            key = text[text.rfind("\n", 0, index) + 1:index].strip()
            base = 1 + (tables if table else 0) + key.count(".")
        elif char == "\n":
            line += 1
        index += 1
    if where is None:
        return f"too deeply nested: tables and arrays more than {MAX_NESTING} levels deep"
    return (f"{where[1] or 'a value'}: too deeply nested: {deepest} levels of tables and arrays "
            f"from line {where[0]} (at most {MAX_NESTING})")


def apply_overrides(content: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``content`` with ``overrides`` (dotted keys or nested tables) merged in."""
    merged = _deep_copy(content)
    for key, value in overrides.items():
        parts = key.split(".")
        table = merged
        for part in parts[:-1]:
            if not isinstance(table.get(part), dict):
                table[part] = {}
            table = table[part]
        leaf = parts[-1]
        if isinstance(value, Mapping) and isinstance(table.get(leaf), dict):
            table[leaf] = apply_overrides(table[leaf], value)
        else:
            table[leaf] = _deep_copy(value)
    return merged


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def parse_study(content: Mapping[str, Any], *, path: str | Path = "<study>", text: str = "") -> StudySpec:
    """Validate parsed TOML content; collects every problem before raising :class:`StudyFileError`."""
    problems: list[str] = []
    _check_keys(content, problems)
    name = _study_name(content, problems)
    description = _typed(content, "description", str, problems, default="")
    model = _typed(content, "model", str, problems, default="")
    model_spec = _model_spec(model, problems) if model else None
    metric, direction = _objective(content, model, model_spec, problems)
    n_trials, timeout, max_failed = _budget(content, problems)
    device = _typed(content, "device", str, problems, default="auto")
    if not _DEVICE.match(device):
        problems.append(f"device: expected auto, cpu, cuda or cuda:N, got {device!r}")
    seed = _typed(content, "seed", int, problems, default=0)
    if not 0 <= seed < SEED_LIMIT:
        problems.append(f"seed: expected an integer from 0 to 2**32 - 1 (the range numpy and scikit-learn take), got {seed}")
        seed = 0
    reference = _typed(content, "reference", bool, problems, default=True)
    fixed, space = _search(content, model, model_spec, problems)
    sampler = _sampler_spec(content.get("sampler", {}), problems)
    pruner = _pruner_spec(content.get("pruner", {}), model_spec, problems, fixed.get("fidelity"))
    heartbeat = _heartbeat_spec(content.get("heartbeat", {}), problems)
    storage = _storage_spec(content.get("storage", {}), problems)
    data_settings = _typed(content, "data", dict, problems, default={})
    data = _data_config(data_settings, path, problems) if "data" in content else None
    if model_spec is not None and data is not None and not problems:
        problems.extend(_fidelity_steps_problems(model_spec, fixed, space, data))
    if problems:
        raise StudyFileError(path, problems)
    return StudySpec(
        name=name, model=model, metric=metric, direction=direction, space=space, fixed=dict(fixed),
        sampler=sampler, pruner=pruner, data=data, data_settings=dict(data_settings),
        n_trials=n_trials, timeout=None if timeout is None else float(timeout),
        max_failed_trials=max_failed, device=device, seed=seed, reference=reference, heartbeat=heartbeat,
        storage=storage, description=description, path=str(path), text=text,
        warnings=tuple(_sampler_pruner_warnings(sampler, pruner) + step_warnings(content.get("space", {}), space)),
    )


def _check_keys(content: Mapping[str, Any], problems: list[str]) -> None:
    for key in content:
        if key not in TOP_LEVEL_KEYS:
            problems.append(f"{key}: unknown key{_did_you_mean(key, TOP_LEVEL_KEYS)}")
    for key in REQUIRED_KEYS:
        if key not in content:
            problems.append(f"{key}: missing (required keys: {', '.join(REQUIRED_KEYS)})")


def _study_name(content: Mapping[str, Any], problems: list[str]) -> str:
    name = _typed(content, "name", str, problems, default=None)
    if name is not None:
        name_problem = study_name_problem(name)
        if name_problem:
            problems.append(f"name: {name_problem}")
    return name or ""


def _objective(content: Mapping[str, Any], model: str, model_spec: Any, problems: list[str]) -> tuple[str, str]:
    """``metric`` and ``direction``: a metric the model reports, in the direction that improves it."""
    metric = _typed(content, "metric", str, problems, default="")
    direction_text = _typed(content, "direction", str, problems, default="")
    direction = DIRECTIONS.get(direction_text.lower(), "")
    if direction_text and not direction:
        problems.append(f"direction: expected 'maximize' or 'minimize', got {direction_text!r}")
    if metric and model_spec is not None:
        allowed = METRICS.get(model_spec.task, ())
        if metric not in allowed:
            problems.append(
                f"metric: {metric!r} is not reported by {model_spec.task} model {model!r}; expected one of {list(allowed)}"
            )
    if metric and direction == "maximize" and metric.endswith(LOWER_IS_BETTER):
        problems.append(f"direction: 'maximize' would make {metric!r} (lower is better) worse; use 'minimize'")
    return metric, direction


def _budget(content: Mapping[str, Any], problems: list[str]) -> tuple[int | None, float | None, int | None]:
    """``n_trials``, ``timeout`` and ``max_failed_trials`` (at least one of the first two)."""
    n_trials = _typed(content, "n_trials", int, problems, default=None)
    if n_trials is not None and n_trials < 1:
        problems.append(f"n_trials: must be >= 1, got {n_trials}")
    timeout = _typed(content, "timeout", (int, float), problems, default=None)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        problems.append(f"timeout: must be a finite number of seconds > 0, got {timeout} (leave it out for no time limit)")
    if "n_trials" not in content and "timeout" not in content:
        problems.append("n_trials: give n_trials, timeout (seconds) or both")
    max_failed = _typed(content, "max_failed_trials", int, problems, default=None)
    if max_failed is not None and max_failed < 1:
        problems.append(f"max_failed_trials: must be >= 1, got {max_failed}")
    return n_trials, timeout, max_failed


def _search(
    content: Mapping[str, Any], model: str, model_spec: Any, problems: list[str]
) -> tuple[dict[str, Any], SearchSpace]:
    """``[fixed]`` and ``[space]``: parameters the model takes, with values it accepts, each in one of them."""
    fixed = _typed(content, "fixed", dict, problems, default={})
    space_table = _typed(content, "space", dict, problems, default={})
    space, space_problems = parse_space(space_table, fixed=fixed)
    problems.extend(str(p) for p in space_problems)
    if model_spec is not None:
        known = set(model_spec.defaults)
        for section, names in (("fixed", fixed), ("space", space_table)):
            for param in names:
                if param not in known:
                    problems.append(
                        f"{section}.{param}: model {model!r} has no parameter {param!r}"
                        f"{_did_you_mean(param, known)}; it takes: {', '.join(sorted(known))}"
                    )
        if not problems:
            problems.extend(_check_values(model, fixed, space))
    for param in set(fixed) & set(space_table):
        problems.append(f"fixed.{param}: also in [space]; a parameter is either fixed or searched")
    if space_table == {} and "space" in content:
        problems.append("space: empty; declare at least one parameter to search")
    return fixed, space


MAX_FIDELITY_STEPS = 20
"""Most fidelity steps a scikit-learn trial may take: each step is one more fit (``subsets``: n steps cost
(n + 1) / 2 full fits; ``folds``: n fits), and 20 steps already give 5% resolution in training fraction."""


def _fidelity_steps_problems(model_spec: Any, fixed: Mapping[str, Any], space: SearchSpace, data: Any) -> list[str]:
    """``fidelity_steps`` at most :data:`MAX_FIDELITY_STEPS`, and for k-fold CV a fixed count of at least 2:
    what can be known before the data is read. The fold count the data allows (at most the smallest tissue's
    training rows) is chosen at run time: ``hpo run`` lowers a fixed count to it (hpo.run.with_fold_count)."""
    from optuna.distributions import CategoricalDistribution

    if "fidelity_steps" not in model_spec.defaults:
        return []
    by_name = {parameter.name: parameter for parameter in space}
    if "fidelity_steps" in by_name:
        distribution = by_name["fidelity_steps"].distribution
        values = distribution.choices if isinstance(distribution, CategoricalDistribution) else (distribution.high,)
        where = "space.fidelity_steps." + ("choices" if isinstance(distribution, CategoricalDistribution) else "high")
        steps = max((v for v in values if isinstance(v, int) and not isinstance(v, bool)), default=0)
    else:
        where, steps = "fixed.fidelity_steps", fixed.get("fidelity_steps", model_spec.defaults["fidelity_steps"])
    if not isinstance(steps, int) or isinstance(steps, bool):
        return []  # a wrong type is reported by the model's own check
    if steps > MAX_FIDELITY_STEPS:
        return [f"{where}: fidelity_steps={steps}; at most {MAX_FIDELITY_STEPS} (each step is one more fit per trial)"]
    if "fidelity" in by_name:
        fidelities = tuple(by_name["fidelity"].distribution.choices)
    else:
        fidelities = (fixed.get("fidelity", model_spec.defaults.get("fidelity")),)
    if "folds" not in fidelities or data.n_folds:  # with [data] n_folds the data set's own folds are used
        return []
    if where == "fixed.fidelity_steps" and steps < 2:
        return [f"{where}: fidelity_steps={steps}; k-fold CV (fidelity = 'folds') needs at least 2 folds"]
    return []


def study_name_problem(name: str) -> str:
    """What is wrong with ``name`` as a study name (empty when nothing is)."""
    if not name:
        return "must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"{name[:20]!r}... has {len(name)} characters; at most {MAX_NAME_LENGTH} are allowed"
    if not _NAME.match(name):
        return f"{name!r} may use letters, digits, '_', '-' and '.' only (starting with a letter or digit)"
    return ""


def check_study_name(name: str, where: str) -> str:
    """``name`` if it is a valid study name (the rule study files follow), else ``ValueError`` naming ``where``."""
    problem = study_name_problem(name)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return name


COMPLETE_ONLY_SAMPLERS = {"gp": None, "cmaes": "consider_pruned_trials"}
"""Samplers that model only COMPLETE trials -> the option that makes them use pruned ones too (None: none)."""


def _sampler_pruner_warnings(sampler: SamplerSpec, pruner: PrunerSpec) -> list[str]:
    """A sampler that learns only from COMPLETE trials next to a pruner: it can propose one point again and again."""
    if sampler.name not in COMPLETE_ONLY_SAMPLERS or pruner.name == "none":
        return []
    option = COMPLETE_ONLY_SAMPLERS[sampler.name]
    if option is not None and sampler.options.get(option):
        return []
    remedy = f"set sampler.{option} = true, " if option else ""
    return [(
        f"sampler.name: {sampler.name!r} learns only from COMPLETE trials; while the {pruner.name!r} pruner prunes "
        f"most trials it can keep proposing the same configuration; {remedy}use sampler 'tpe' "
        f"(it learns from pruned trials too) or pruner 'none'"
    )]


def _typed(content: Mapping[str, Any], key: str, kind: Any, problems: list[str], *, default: Any) -> Any:
    if key not in content:
        return default
    value = content[key]
    bad_bool = isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,))
    if bad_bool or not isinstance(value, kind):
        expected = {str: "a string", int: "an integer", dict: "a table", bool: "true or false"}.get(kind, "a number")
        problems.append(f"{key}: expected {expected}, got {value!r}")
        return default
    return value


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_spec(model: str, problems: list[str]) -> Any:
    from models.specs import available_models, get_spec

    names = [m if isinstance(m, str) else m.name for m in available_models()]
    if model not in names:
        problems.append(f"model: unknown model {model!r}{_did_you_mean(model, names)}; available: {', '.join(names)}")
        return None
    return get_spec(model)


def _check_values(model: str, fixed: Mapping[str, Any], space: SearchSpace) -> list[str]:
    """Fixed values, categorical choices and numeric bounds must be values the model accepts."""
    from optuna.distributions import CategoricalDistribution

    from models.specs import resolve_model_params

    problems: list[str] = []
    try:
        resolve_model_params(model, fixed)
    except ValueError as error:
        problems.append(f"fixed: {error}")
    for parameter in space:
        distribution = parameter.distribution
        if isinstance(distribution, CategoricalDistribution):
            candidates = [("choices", parameter.decode(c)) for c in distribution.choices]
        else:
            candidates = [("low", distribution.low), ("high", distribution.high)]
        for where, value in candidates:
            try:
                resolve_model_params(model, {parameter.name: value})
            except ValueError as error:
                problems.append(f"space.{parameter.name}.{where}: {error}")
                break
    return problems


def _sampler_spec(table: Any, problems: list[str]) -> SamplerSpec:
    from hpo.samplers import SAMPLERS, build_sampler

    if not isinstance(table, Mapping):
        problems.append(f"sampler: expected a table, got {table!r}")
        return SamplerSpec()
    options = {k: v for k, v in table.items() if k not in ("name", "seed")}
    name, seed = table.get("name", "tpe"), table.get("seed")
    if name not in SAMPLERS:
        problems.append(f"sampler.name: unknown sampler {name!r}{_did_you_mean(str(name), SAMPLERS)}; expected one of {sorted(SAMPLERS)}")
        return SamplerSpec()
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT):
        problems.append(f"sampler.seed: expected an integer from 0 to 2**32 - 1, got {seed!r}")
        seed = None
    try:
        build_sampler(name, options, seed)
    except ImportError as error:
        problems.append(f"sampler.name: sampler {name!r} is not available here: {error}")
    except ValueError as error:
        problems.append(str(error))
    return SamplerSpec(name=name, seed=seed, options=options)


def _pruner_spec(table: Any, model_spec: Any, problems: list[str], fidelity: Any = None) -> PrunerSpec:
    from hpo.samplers import PRUNERS, build_pruner, canonical_pruner_name

    if not isinstance(table, Mapping):
        problems.append(f"pruner: expected a table, got {table!r}")
        return PrunerSpec()
    options = {k: v for k, v in table.items() if k != "name"}
    name = table.get("name", "median")
    try:
        name = canonical_pruner_name(str(name))
        build_pruner(name, options)
    except ValueError as error:
        message = str(error)
        problems.append(f"pruner.name: {message}" if "unknown pruner" in message else message)
        return PrunerSpec()
    if name == "wilcoxon" and model_spec is not None and model_spec.family != "sklearn" and fidelity != "folds":
        problems.append(
            "pruner.name: 'wilcoxon' compares fold-wise values; use it with fixed.fidelity = \"folds\" "
            "(a PyTorch model then reports its fold scores), not with a learning curve"
        )
    assert name in PRUNERS
    return PrunerSpec(name=name, options=options)


def _heartbeat_spec(table: Any, problems: list[str]) -> HeartbeatSpec:
    if not isinstance(table, Mapping):
        problems.append(f"heartbeat: expected a table, got {table!r}")
        return HeartbeatSpec()
    values = dict(DEFAULT_HEARTBEAT)
    for key, value in table.items():
        if key not in HEARTBEAT_KEYS:
            problems.append(f"heartbeat.{key}: unknown key{_did_you_mean(key, HEARTBEAT_KEYS)}; allowed: {list(HEARTBEAT_KEYS)}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "max_retry" else 1):
            problems.append(f"heartbeat.{key}: expected a {'non-negative' if key == 'max_retry' else 'positive'} integer, got {value!r}")
        else:
            values[key] = value
    # The environment wins, so an operator (or a test) can shorten detection without editing files.
    for key, env in (("interval", "HPO_HEARTBEAT_INTERVAL"), ("grace_period", "HPO_HEARTBEAT_GRACE")):
        raw = os.environ.get(env, "")
        if raw.strip().isdigit() and int(raw) >= 1:
            values[key] = int(raw)
        elif raw:
            problems.append(f"${env}: expected a positive whole number of seconds, got {raw!r}")
    if values["grace_period"] <= values["interval"]:
        problems.append(
            f"heartbeat.grace_period: must exceed the interval (grace_period={values['grace_period']}, interval={values['interval']})"
        )
    return HeartbeatSpec(**values)


def _storage_spec(table: Any, problems: list[str]) -> StorageSpec:
    if not isinstance(table, Mapping):
        problems.append(f"storage: expected a table, got {table!r}")
        return StorageSpec()
    window = DEFAULT_OUTAGE_WINDOW_S
    for key, value in table.items():
        if key not in STORAGE_KEYS:
            problems.append(f"storage.{key}: unknown key{_did_you_mean(key, STORAGE_KEYS)}; allowed: {list(STORAGE_KEYS)}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            problems.append(f"storage.{key}: expected a finite, non-negative number of seconds, got {value!r}")
        else:
            window = float(value)
    overridden = os.environ.get(OUTAGE_WINDOW_ENV, "")
    if overridden:  # the environment wins, as for heartbeats
        try:
            window = float(overridden)
        except ValueError:
            window = math.nan
        if not (math.isfinite(window) and window >= 0):
            problems.append(f"${OUTAGE_WINDOW_ENV}: expected a finite, non-negative number of seconds, got {overridden!r}")
            window = DEFAULT_OUTAGE_WINDOW_S
    return StorageSpec(outage_window_s=window)


def _data_config(settings: Mapping[str, Any], path: str | Path, problems: list[str]) -> Any:
    from data_pipeline import DataConfig

    try:
        return DataConfig.from_mapping(settings, where=str(path))
    except (ValueError, TypeError, KeyError) as error:
        message = str(error)
        problems.append(message.split(f"{path}: ", 1)[-1] if str(path) in message else f"data: {message}")
        return None
