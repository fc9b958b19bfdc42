"""``hpo export STUDY --out best.toml``: the selected configuration, ready for ``hpo train --config``.

Selected: the best trial, unless its gain over the reference trial (the defaults) is within the noise
(:func:`hpo.results.selected_trial`); ``--best`` exports the best regardless, ``--trial N`` trial N.
"""

from __future__ import annotations

import argparse
import shlex

from hpo.cli._options import add_force_argument, add_storage_argument, claim_output_file, write_in_place


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a study's selected configuration (model, all parameters, data settings, provenance)",
    )
    parser.add_argument("study", help="study name (see `hpo studies`)")
    parser.add_argument("--out", "-o", default="best.toml", help="output file (.toml, .json, .yaml; default best.toml)")
    parser.add_argument("--format", choices=("toml", "json", "yaml"), help="format (default: by the extension)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="export this trial number instead of the selected one")
    which.add_argument("--best", action="store_true",
                       help="export the best trial even when its gain over the defaults is within the noise")
    add_force_argument(parser, "the file")
    add_storage_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.results import export_trial, load_study, reference_gain_text, write_config
    from hpo.storage import open_storage, redact, resolve_storage_url

    out = claim_output_file(args.out, force=args.force)  # before any work: refused at once
    url = resolve_storage_url(args.storage)
    study = load_study(open_storage(url, heartbeat_interval=None, read_only=True), args.study)
    config = export_trial(study, args.trial, storage_url=redact(url), best=args.best)
    # the temporary file has the same extension, so the format follows it as it would follow --out
    path = write_in_place(out, lambda temporary: write_config(config, temporary, args.format))
    source = config["source"]
    folds = f", mean of {len(source['fold_scores'])} CV folds" if source.get("fold_scores") else ""
    print(f"exported trial {source['trial']} of {source['study']} ({source['metric']} = {source['value']:.4f}{folds}) to {path}")
    if source.get("selection"):
        print(f"selected: {source['selection']}")
    print(f"gain: {reference_gain_text(config)}")
    if source.get("val_split_warning"):
        print(f"warning: {source['val_split_warning']}")
    print(f"retrain: hpo train --config {shlex.quote(str(path))}")
    return 0

