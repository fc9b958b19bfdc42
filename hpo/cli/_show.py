"""``hpo show STUDY``: the best trial and the top-k of a study."""

from __future__ import annotations

import argparse

from hpo.cli._options import add_storage_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="show a study's best trial and its top-k trials")
    parser.add_argument("study", help="study name (see `hpo studies`)")
    add_storage_argument(parser)
    parser.add_argument("--top", "-k", type=int, default=5, help="how many of the best trials to list (default 5)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.results import (
        REFERENCE_ATTR,
        Standings,
        compute_headline,
        load_study,
        study_row,
        top_trials,
        trials_with_user_attr,
    )
    from hpo.storage import open_storage, redact, resolve_storage_url

    url = resolve_storage_url(args.storage)
    study = load_study(open_storage(url, heartbeat_interval=None, read_only=True), args.study)
    row = study_row(study)
    c = row.counts
    attrs = study.user_attrs
    print(f"study {row.name}: model {row.model}, {row.direction} {row.metric}")
    top = top_trials(study, max(args.top, 2))  # small queries: no trial but these is loaded (RDB storages)
    reference = next(iter(trials_with_user_attr(study, REFERENCE_ATTR, True)), None)
    standings = Standings(ranked=top, reference=reference, counts=c)
    headline = compute_headline(study, standings=standings, user_attrs=attrs, storage=redact(url) if args.storage else None)
    for line in headline.lines():
        print(line)
    print()
    print(f"trials: {c.complete} complete, {c.pruned} pruned, {c.failed} failed, {c.running} running, {c.waiting} waiting")
    sampler, pruner = attrs.get("sampler", {}), attrs.get("pruner", {})
    if sampler or pruner:
        print(f"sampler: {_inline(sampler)}   pruner: {_inline(pruner)}")
    if attrs.get("data_fingerprint"):
        print(f"data: {_inline(attrs.get('data_settings', {}), skip_none=True)} (fingerprint {attrs['data_fingerprint'][:12]})")
    top = top[: args.top]
    if not top:
        print("no complete trial yet")
        return 0
    best = top[0]
    print(f"\nbest trial {best.number}: {row.metric} = {best.value:.4f}")
    for key, value in sorted(best.params.items()):
        print(f"  {key} = {_short(value)}")
    extras = [f"{k}={_short(best.user_attrs[k])}" for k in ("steps_run", "train_seconds", "n_parameters", "device") if k in best.user_attrs]
    if extras:
        print("  (" + ", ".join(extras) + ")")
    print(f"\ntop {len(top)}:")
    for trial in top:
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(trial.params.items()))
        print(f"  #{trial.number:<4} {trial.value:.4f}  {params}")
    return 0


def _inline(mapping, skip_none: bool = False) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in mapping.items() if not (skip_none and v is None) and k != "cache_dir")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
