"""``hpo latent``: a trained model's latent space (or penultimate layer) in 2-D, coloured by tissue.

The model comes from ``hpo train --out DIR`` (``--model-dir DIR``, or its ``model/`` folder) or is
retrained from an exported configuration (``--config best.toml``). The data set is the one the
model was trained on (recorded in ``metrics.json`` / the config's ``[data]`` table); any data
option given here overrides the recorded setting.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from hpo.cli._data import RENAMED_FOR_MODEL_COMMANDS, add_data_options, data_overrides
from hpo.cli._options import add_plotly_js_argument

logger = logging.getLogger(__package__)

METRICS_FILE = "metrics.json"
MODEL_SUBDIRECTORY = "model"
METADATA_FILE = "model.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "latent",
        help="plot a model's embeddings in 2-D (PCA, t-SNE, UMAP) coloured by tissue",
        description=(
            "Embed every sample of train/val/test with a trained autoencoder (latent code) or deep classifier "
            "(penultimate layer), project to 2-D and write interactive plotly HTML (colour = tissue, marker = "
            "split, hover = sample ID, tissue, primary disease), a PNG where plotly's image exporter is "
            "installed, and latent_points.csv."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", metavar="DIR", help="output folder of 'hpo train' (or its model/ folder)")
    source.add_argument("--config", metavar="FILE", help="config written by 'hpo export': retrain, then plot")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the figures")
    parser.add_argument("--method", dest="methods", action="append", choices=("pca", "tsne", "umap"),
                        help="projection (repeatable; default pca and tsne, plus umap when installed)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of the projections (default 0)")
    parser.add_argument("--no-png", action="store_true", help="skip the PNG even where an exporter is installed")
    add_plotly_js_argument(parser)
    add_data_options(parser, title="data settings (default: those the model was trained on)",
                     renamed=RENAMED_FOR_MODEL_COMMANDS, study_option=False)
    parser.set_defaults(handler=run)


def _model_folder(directory: Path) -> tuple[Path, dict[str, Any]]:
    """The folder holding ``model.json`` and the recorded training record (``metrics.json``), if any."""
    if (directory / MODEL_SUBDIRECTORY / METADATA_FILE).is_file():
        model_dir = directory / MODEL_SUBDIRECTORY
    elif (directory / METADATA_FILE).is_file():
        model_dir = directory
    else:
        raise FileNotFoundError(f"{directory}: no trained model here (expected {METADATA_FILE} or "
                                f"{MODEL_SUBDIRECTORY}/{METADATA_FILE}, as written by 'hpo train --out')")
    for candidate in (model_dir.parent / METRICS_FILE, model_dir / METRICS_FILE):
        if candidate.is_file():
            return model_dir, json.loads(candidate.read_text(encoding="utf-8"))
    return model_dir, {}


def _prepare(settings: dict[str, Any], overrides: dict[str, Any], where: str) -> Any:
    from data_pipeline import DataConfig, prepare_dataset

    mapping = {key: value for key, value in settings.items() if value is not None}
    mapping.update(overrides)
    return prepare_dataset(DataConfig.from_mapping(mapping, where=where))


def run(args: argparse.Namespace) -> int:
    from hpo.browse import available_methods, write_latent_plots
    from models import load_model

    overrides = data_overrides(args)
    out = Path(args.out)
    if args.config:
        from hpo.results import read_config, retrain

        config = read_config(args.config)
        config["data"] = {**config["data"], **overrides}
        print(f"retraining {config['model']} from {args.config} on the training split ...", flush=True)
        retrain(config, out / "model", train_split="train", eval_splits=("val",), device=args.device)
        model_dir, record = _model_folder(out / "model")
        settings, fingerprint = dict(config["data"]), config.get("source", {}).get("data_fingerprint", "")
        where = f"{args.config} [data]"
    else:
        model_dir, record = _model_folder(Path(args.model_dir))
        settings = dict(record.get("data", {}).get("settings", {}))
        fingerprint = record.get("data", {}).get("fingerprint", "")
        where = f"{model_dir} training record"
        if not settings and not overrides:
            raise ValueError(f"{model_dir}: no {METRICS_FILE} records the training data; give the data options "
                             "(e.g. --preset tiny) the model was trained with")
    data = _prepare(settings, overrides, where)
    if fingerprint and fingerprint != data.fingerprint:
        logger.warning("data fingerprint %s differs from the model's training data %s: the plot shows other data",
                       data.fingerprint[:12], fingerprint[:12])
    expected = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8")).get("n_features")
    if expected is not None and expected != data.n_features:
        raise ValueError(f"{model_dir}: the model expects {expected} genes, the data set has {data.n_features}; "
                         "give the data options it was trained with")
    model = load_model(model_dir, device=args.device)
    methods = args.methods or list(available_methods())
    written = write_latent_plots(model, data, out, methods=methods, seed=args.seed, png=not args.no_png,
                                 label=model.name, plotly_js=args.plotly_js)
    for path in written:
        print(f"wrote {path}")
    if not any(path.suffix == ".png" for path in written) and not args.no_png:
        print("no PNG: install plotly's static image exporter (kaleido) for PNG files")
    return 0
