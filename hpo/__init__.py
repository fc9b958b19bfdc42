"""Optuna studies for tissue-of-origin classification: study files, workers, storage, results, reports.

The subpackages, lowest layer first (each imports only those below it):

* :mod:`hpo.storage`  -- where studies live: URLs, backends, heartbeats, outages, batched writes;
* :mod:`hpo.samplers` -- samplers (the genetic algorithm too) and pruners by name;
* :mod:`hpo.study`    -- study files, search spaces and ``--set`` overrides;
* :mod:`hpo.results`  -- the trial table (best, top-k, counts), export, retrain, artifacts, dashboard notes;
* :mod:`hpo.run`      -- the objective, workers, the launcher of ``hpo run``;
* :mod:`hpo.compare`  -- samplers side by side, and their statistics;
* :mod:`hpo.browse`   -- optuna-dashboard, HTML reports, latent-space plots;
* :mod:`hpo.cli`      -- the ``hpo`` command.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "attach"]


def attach(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for a package whose public names live in private modules.

    ``exports`` maps a module of the package (``"_backends"``) to the names it provides. A name is
    imported on first use, so importing a package costs nothing until one of its names is needed
    (``hpo --help`` stays fast); the names and modules are listed in one literal that readers and
    the import-rule test can see (the pattern of Scientific Python's SPEC 1, ``lazy_loader.attach``).
    """
    owner = {name: module for module, names in exports.items() for name in names}
    public = sorted(owner)

    def __getattr__(name: str) -> Any:
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
        globals_of_package = vars(importlib.import_module(package))
        globals_of_package[name] = value  # the next access skips __getattr__
        return value

    def __dir__() -> list[str]:
        return list(public)

    return __getattr__, __dir__, public
