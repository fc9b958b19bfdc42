"""``hpo latent``: a trained model's latent space (or penultimate layer) in 2-D, coloured by tissue.

The model comes from ``hpo train --out DIR`` (``--model-dir DIR``, or its ``model/`` folder) or is
retrained from an exported configuration (``--config best.toml``). The data set is the one the
model was trained on (recorded in ``metrics.json`` / the config's ``[data]`` table); any data
option given here overrides the recorded setting.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from hpo.cli._data import RENAMED_FOR_MODEL_COMMANDS, add_data_options, data_overrides
from hpo.cli._options import add_plotly_js_argument

logger = logging.getLogger(__package__)

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


def run(args: argparse.Namespace) -> int:
    from hpo.browse import available_methods, trained_model_and_data, write_latent_plots

    out = Path(args.out)
    if args.config:
        print(f"retraining the model of {args.config} on the training split ...", flush=True)
    model, data = trained_model_and_data(
        model_dir=args.model_dir, config=args.config, data_overrides=data_overrides(args), out=out, device=args.device,
    )
    methods = args.methods or list(available_methods())
    written = write_latent_plots(model, data, out, methods=methods, seed=args.seed, png=not args.no_png,
                                 label=model.name, plotly_js=args.plotly_js)
    for path in written:
        print(f"wrote {path}")
    if not any(path.suffix == ".png" for path in written) and not args.no_png:
        print("no PNG: install plotly's static image exporter (kaleido) for PNG files")
    return 0
