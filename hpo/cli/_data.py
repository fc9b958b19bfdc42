"""``hpo data prepare|summary|generate``: prepare and describe the shared data set."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpo.browse import plotly_js_tag
from hpo.cli._options import add_plotly_js_argument

# (option, DataConfig field, type, help)
_DATA_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--source", "source", str, "synthetic (default) or depmap (implied by --expression/--model)"),
    ("--preset", "preset", str, "synthetic size: tiny, small or full (default full)"),
    ("--seed", "synthetic_seed", int, "synthetic generator seed (default 0)"),
    ("--layout", "synthetic_layout", str, "synthetic file layout: classic or 25q3 (default classic)"),
    ("--samples", "synthetic_samples", int, "synthetic: override the preset's labelled samples"),
    ("--genes", "synthetic_genes", int, "synthetic: override the preset's genes"),
    ("--tissues", "synthetic_tissues", int, "synthetic: override the preset's tissues (2..39)"),
    ("--expression", "expression_path", str, "DepMap expression CSV (either layout, .csv or .csv.gz)"),
    ("--model", "model_path", str, "DepMap Model.csv (metadata; read by column name)"),
    ("--label-column", "label_column", str, "Model.csv column used as the label (default OncotreeLineage)"),
    ("--min-samples-per-tissue", "min_samples_per_tissue", int, "drop rarer tissues (default 10)"),
    ("--top-k-genes", "top_k_genes", int, "keep the k most variable genes (default: all passing the filter)"),
    ("--min-gene-variance", "min_gene_variance", float, "drop genes with lower training variance (default 0.05)"),
    ("--log-transform", "log_transform", str, "auto (default), yes or no: apply log2(x+1)"),
    ("--val-fraction", "val_fraction", float, "validation share (default 0.15)"),
    ("--test-fraction", "test_fraction", float, "test share (default 0.15)"),
    ("--split-seed", "split_seed", int, "seed of the stratified split (default 0)"),
    ("--n-folds", "n_folds", int, "stratified k-fold assignment of training rows (default 0: none)"),
    ("--cache-dir", "cache_dir", str, "cache directory (default $HPO_HOME/cache or hpo-runs/cache)"),
)


# Options renamed where a command has its own --model/--seed (hpo train, hpo latent).
RENAMED_FOR_MODEL_COMMANDS = {"--model": "--model-csv", "--seed": "--data-seed"}


def add_data_options(
    parser: argparse.ArgumentParser,
    *,
    title: str = "data settings (override the study file's [data] table)",
    renamed: dict[str, str] | None = None,
    study_option: bool = True,
) -> None:
    """Add the data settings (every DataConfig field) and, optionally, ``--study FILE`` to ``parser``.

    ``renamed`` maps an option to the name it takes in this command (e.g. ``--model`` -> ``--model-csv``).
    """
    renamed = renamed or {}
    group = parser.add_argument_group(title)
    if study_option:
        group.add_argument("--study", metavar="FILE", help="read the [data] table of this study TOML file")
    for option, field_name, kind, help_text in _DATA_OPTIONS:
        metavar = "FILE" if field_name.endswith("_path") else ("DIR" if field_name == "cache_dir" else None)
        group.add_argument(renamed.get(option, option), dest=f"data_{field_name}", type=kind, default=None,
                           metavar=metavar, help=help_text)


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The data settings given as options (DataConfig field -> value)."""
    return {
        field_name: getattr(args, f"data_{field_name}")
        for _, field_name, _, _ in _DATA_OPTIONS
        if getattr(args, f"data_{field_name}", None) is not None
    }


def config_from_args(args: argparse.Namespace) -> Any:
    """The DataConfig from ``--study``'s [data] table overridden by the given options."""
    from data_pipeline import DataConfig, DataError
    from data_pipeline.config import resolve_relative_paths

    mapping: dict[str, Any] = {}
    where = "command line"
    if getattr(args, "study", None):
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]

        study = Path(args.study)
        try:
            text = study.read_text(encoding="utf-8")
            document = tomllib.loads(text)
        except FileNotFoundError:
            raise DataError(f"{study}: study file not found") from None
        except tomllib.TOMLDecodeError as error:
            raise DataError(f"{study}: not valid TOML ({error})") from None
        except RecursionError:  # tomllib recurses once per level of nesting
            from hpo.study import deep_nesting

            raise DataError(f"{study}: {deep_nesting(text)}") from None
        table = document.get("data", {})
        if not isinstance(table, dict):
            raise DataError(f"{study}: [data] must be a table, got {type(table).__name__}")
        mapping.update(resolve_relative_paths(table, study.absolute().parent))  # relative to the study file
        where = str(study)
    mapping.update(data_overrides(args))
    return DataConfig.from_mapping(mapping, where=where)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="prepare, summarise or generate the data set",
        description="Prepare (load, filter, split, normalise, cache) and describe the data set.",
    )
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    prepare = commands.add_parser(
        "prepare", help="prepare and cache the data set",
        description="Load DepMap files (or make the synthetic default), filter, split, normalise and cache.",
    )
    add_data_options(prepare)
    prepare.set_defaults(handler=run_prepare)

    summary = commands.add_parser(
        "summary", help="print a summary table and write an HTML report",
        description="Prepare (or reuse) the data set, print its summary and write an HTML report.",
    )
    add_data_options(summary)
    summary.add_argument("--out", metavar="FILE", default=None,
                         help="HTML report path (default $HPO_HOME/data-summary.html or hpo-runs/data-summary.html)")
    add_plotly_js_argument(summary)
    summary.set_defaults(handler=run_summary)

    generate = commands.add_parser(
        "generate", help="write the synthetic DepMap-layout files into a folder",
        description="Write the synthetic expression matrix and Model.csv in a DepMap layout.",
    )
    generate.add_argument("--out", metavar="DIR", required=True, help="folder for the two CSV files")
    generate.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--layout", default="classic", choices=("classic", "25q3"))
    generate.add_argument("--samples", type=int, default=None)
    generate.add_argument("--genes", type=int, default=None)
    generate.add_argument("--tissues", type=int, default=None)
    generate.set_defaults(handler=run_generate)


@contextlib.contextmanager
def _progress_to_stdout() -> Iterator[None]:
    """Send the pipeline's progress lines to stdout while a command runs: stderr then carries only
    the one-line error of a failure."""
    logger = logging.getLogger("data_pipeline")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def run_prepare(args: argparse.Namespace) -> int:
    from data_pipeline import prepare_dataset

    with _progress_to_stdout():
        dataset = prepare_dataset(config_from_args(args), progress=True)
    print(
        f"prepared {dataset.n_classes} tissues, {dataset.n_features} genes: "
        f"train {len(dataset.y_train)}, val {len(dataset.y_val)}, test {len(dataset.y_test)}"
    )
    print(f"cache: {dataset.directory}")
    print(f"fingerprint: {dataset.fingerprint}")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from data_pipeline import prepare_dataset
    from data_pipeline.summary import format_summary, write_report

    with _progress_to_stdout():
        dataset = prepare_dataset(config_from_args(args), progress=True)
    print(format_summary(dataset))
    out = args.out or os.path.join(os.environ.get("HPO_HOME", "hpo-runs"), "data-summary.html")
    path = write_report(dataset, out, plotly_js_tag=plotly_js_tag(args.plotly_js, Path(out).parent))
    print(f"\nreport: {path}", file=sys.stdout)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from data_pipeline.synthetic import generate_files, spec_for

    spec = spec_for(args.preset, seed=args.seed, layout=args.layout, n_samples=args.samples,
                    n_genes=args.genes, n_tissues=args.tissues)
    expression, model = generate_files(spec, args.out)
    print(f"wrote {expression}")
    print(f"wrote {model}")
    return 0
