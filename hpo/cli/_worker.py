"""``hpo worker STUDY_FILE --storage URL``: one study worker (for other hosts, SLURM arrays, or ``hpo run``).

``hpo run`` starts its workers as ``python -m hpo.cli worker ...``.
"""

from __future__ import annotations

import argparse
import os
import sys

from hpo.cli._options import add_study_arguments, overrides_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run one worker of a study (start many, on many hosts, against one storage)",
        description="Run trials of a study until its n_trials finished trials (in total, over all workers) exist.",
    )
    _add_arguments(parser)
    parser.set_defaults(handler=run)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_study_arguments(parser)
    parser.add_argument(
        "--worker-index", type=int,
        help="this worker's index (offsets the sampler seed; default: from SLURM_ARRAY_TASK_ID, else the PID)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads for training (default: $HPO_NUM_THREADS or all)")
    parser.add_argument(
        "--trials-before", type=int, metavar="N",
        help="trials the study held when this run began; shifts the sampler seed so a resumed study proposes "
             "new configurations (default: counted when this worker opens the study; `hpo run` passes it)",
    )


def run(args: argparse.Namespace) -> int:
    from hpo.run import die_with_parent, run_worker

    die_with_parent()  # a worker of `hpo run` stops when hpo run is gone, even if it was SIGKILLed
    from hpo.storage import check_storage_url, resolve_storage_url
    from hpo.study import check_study_name, load_study_file

    if args.study_name is not None:  # the cheap checks first, before the study file and its models load
        check_study_name(args.study_name, "--study-name")
    check_storage_url(resolve_storage_url(args.storage))
    _threads(args.threads)  # a bad count is said before the study file and its models load
    spec = load_study_file(args.study_file, overrides_from(args))
    index = args.worker_index
    if index is None and os.environ.get("SLURM_ARRAY_TASK_ID", "").isdigit():
        index = int(os.environ["SLURM_ARRAY_TASK_ID"])
    threads = _threads(args.threads)
    if args.trials_before is not None and args.trials_before < 0:
        raise ValueError(f"--trials-before must be >= 0, got {args.trials_before}")
    report = run_worker(
        spec, storage_url=args.storage, study_name=args.study_name, worker_index=index, num_threads=threads,
        trials_before=args.trials_before,
    )
    if report.stopped_on_failures:
        print(f"hpo worker: {spec.path}: {report.stop_reason}", file=sys.stderr)
        return 1
    return 0



def _threads(given: int | None) -> int | None:
    """``--threads``, else ``$HPO_NUM_THREADS``, else None (all); ``ValueError`` for a count below 1."""
    if given is not None:
        if given < 1:
            raise ValueError(f"--threads must be >= 1, got {given}")
        return given
    value = os.environ.get("HPO_NUM_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"$HPO_NUM_THREADS must be a whole number >= 1, got {value!r}")
    return int(value)
