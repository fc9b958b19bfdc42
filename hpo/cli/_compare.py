"""``hpo compare``: run samplers side by side on a study file or a built-in test function."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hpo.cli._options import add_plotly_js_argument, add_storage_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare samplers (tpe, ga, random, nsga2, cmaes, ...) over several seeds",
        description=(
            "Run one study per sampler x seed, named PREFIX/SAMPLER/seedN in the storage (user attributes "
            "comparison, sampler, sampler_options, seed, target), then write trials.csv, summary.csv and a "
            "plotly report.html that names the winner, ranks the samplers by best value and by time to the "
            "target, and draws best so far against trial and wall time, final best values, trials to reach "
            "the target, pruned fraction and the sampler's own time per trial. Give a study file, or "
            "--function for a cheap built-in test function (many seeds are affordable, no training noise; its "
            "studies stay in memory unless --storage is given). Re-running a stored comparison with the same "
            "--name resumes."
        ),
    )
    parser.add_argument("study_file", nargs="?", help="TOML study file (or use --function)")
    parser.add_argument("--function", metavar="NAME", help="built-in test function instead of a study file")
    parser.add_argument("--list-functions", action="store_true", help="list the test functions and exit")
    parser.add_argument("--samplers", default="tpe,ga,random,nsga2,cmaes",
                        help="comma-separated sampler names (default tpe,ga,random,nsga2,cmaes)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per sampler (default 5)")
    parser.add_argument("--n-trials", type=int,
                        help="trials per study (default 100 for a function, the file's n_trials or 20 for a study)")
    parser.add_argument("--workers", "-j", type=int, default=1,
                        help="worker processes sharing each study (default 1; >1 needs a database storage)")
    add_storage_argument(parser, also="but --function with one worker runs in memory unless --storage is "
                                      "given (fast, nothing kept); 'memory' keeps nothing (one worker only)")
    parser.add_argument("--name", metavar="PREFIX", help="comparison name, the study name prefix "
                                                         "(default compare-<problem>-<time>)")
    parser.add_argument("--out", metavar="DIR", help="report folder (default $HPO_HOME/comparisons/<name>)")
    parser.add_argument("--target", type=float,
                        help="value counted as 'reached' (default: the test function's target; none for studies)")
    parser.add_argument("--sampler-option", dest="sampler_options", action="append", default=[],
                        metavar="SAMPLER.KEY=VALUE",
                        help="a sampler option, e.g. ga.population_size=10 or nsga2.population_size=20 (repeatable)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override a study-file key, e.g. --set data.preset=tiny (repeatable)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N for study files (overrides device)")
    add_plotly_js_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpo.compare import FUNCTIONS

    if args.list_functions:
        for function in FUNCTIONS.values():
            print(f"{function.name:22s} {function.direction:8s} optimum {function.optimum:g}, "
                  f"target {function.target:g}: {function.description}")
        return 0
    if (args.study_file is None) == (args.function is None):
        raise ValueError("give either a study file or --function NAME (see --list-functions)")
    return _compare(args)


def _compare(args: argparse.Namespace) -> int:
    import optuna

    from hpo.browse import ranking_table, write_comparison_report
    from hpo.compare import (
        ComparisonPlan,
        ProblemSource,
        compare_samplers,
        default_n_trials,
        default_prefix,
        resolve_problem,
    )
    from hpo.storage import redact, resolve_storage_url, run_directory
    from hpo.study import parse_overrides

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.function is not None:
        if args.assignments:
            raise ValueError("--set overrides study-file keys; there is no study file with --function")
        source = ProblemSource("function", args.function)
    else:
        if not Path(args.study_file).is_file():
            raise FileNotFoundError(f"no such study file: {args.study_file}")
        source = ProblemSource("study", args.study_file, json.dumps(parse_overrides(args.assignments)), args.device)
    problem = resolve_problem(source)  # a study file's data is prepared once, here
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    plan = ComparisonPlan(
        source=source,
        samplers=tuple(name.strip() for name in args.samplers.split(",") if name.strip()),
        seeds=tuple(range(args.seeds)),
        n_trials=args.n_trials or default_n_trials(source),
        prefix=args.name or default_prefix(problem.name),
        workers=args.workers,
        sampler_options=_sampler_options(args.sampler_options),
        target=args.target,
    )
    storage: Any = None if _in_memory(args) else resolve_storage_url(args.storage)
    where = "memory (nothing kept; --storage URL keeps the studies)" if storage is None else redact(storage)
    print(f"comparing {', '.join(plan.samplers)} on {problem.name}: {len(plan.seeds)} seeds x {plan.n_trials} trials, "
          f"{plan.workers} worker(s), studies {plan.prefix}/<sampler>/seed<N> in {where}", flush=True)

    result = compare_samplers(plan, storage)  # logs one line per finished study
    out = Path(args.out) if args.out else run_directory() / "comparisons" / plan.prefix.replace("/", "_")
    paths = write_comparison_report(
        result.trials, result.summary, out, direction=result.problem.direction, target=result.target,
        title=f"{plan.prefix}: samplers on {result.problem.name}", budgets_table=result.budgets,
        can_prune=result.problem.make_pruner is not None, plotly_js=args.plotly_js,
    )
    table = ranking_table(result.ranking, result.target)
    columns = [c for c in ("rank_by_best", "sampler", "best_mean", "best_std", "reached_target",
                           "trials_to_target_median", "sampler_options") if c in table]
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for line in result.verdict:
        print(line)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    sys.stdout.flush()
    return 0


def _in_memory(args: argparse.Namespace) -> bool:
    """``--storage memory``, or a test function run by one worker with no --storage given."""
    if args.storage is not None:
        return args.storage == "memory"
    return args.function is not None and args.workers == 1


def _sampler_options(assignments: list[str]) -> dict[str, dict[str, Any]]:
    from hpo.study import parse_overrides

    options: dict[str, dict[str, Any]] = {}
    for key, value in parse_overrides(assignments).items():
        sampler, dot, option = key.partition(".")
        if not dot or not option:
            raise ValueError(f"--sampler-option {key!r}: expected SAMPLER.KEY=VALUE, e.g. ga.population_size=10")
        options.setdefault(sampler, {})[option] = value
    return options
