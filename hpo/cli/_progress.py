"""What ``hpo run`` prints: short status lines while its workers run, and next steps at the end.

A status line appears when something changed (a trial started or finished, a new best, a worker
exited); when nothing did, a heartbeat every ``heartbeat_seconds`` says the run is still alive, with
the elapsed time and an estimate of the time left from the finished trials' durations.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from hpo.results import Headline
from hpo.run import LaunchResult, Progress
from hpo.storage import redact

HEARTBEAT_SECONDS = 60.0
EXPORT_HINTS = ("export:", "retrain:")
"""Headline lines left out when the run stopped before its study finished."""


def clock(seconds: float) -> str:
    """``75`` -> ``01:15``; ``3725`` -> ``1:02:05``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def eta_seconds(progress: Progress) -> float | None:
    """Time left: the trials still to finish times the mean trial duration, shared by the live workers."""
    if not progress.n_trials or not progress.mean_trial_seconds or not progress.workers_alive:
        return None
    remaining = max(0, progress.n_trials - progress.counts.finished)
    return remaining * progress.mean_trial_seconds / progress.workers_alive


def status_line(progress: Progress, workers: int) -> str:
    """``[00:42] 2/4 finished (2 complete, 0 pruned, 0 failed), 1 running; best 0.6694 (trial 2); ETA ~00:12``."""
    c = progress.counts
    done = f"{c.finished}/{progress.n_trials}" if progress.n_trials else f"{c.finished}"
    line = f"[{clock(progress.elapsed)}] {done} finished ({c.complete} complete, {c.pruned} pruned, {c.failed} failed), {c.running} running"
    if progress.best_value is not None:
        line += f"; best {progress.best_value:.4f} (trial {progress.best_trial})"
    budget_spent = progress.n_trials is not None and c.finished >= progress.n_trials
    if progress.workers_alive < workers and not budget_spent:  # a normal finish is no news
        line += f"; {progress.workers_alive} of {workers} worker{'s' if workers != 1 else ''} left"
    eta = eta_seconds(progress)
    if eta and progress.workers_alive:
        line += f"; ETA ~{clock(eta)}"
    return line


class StatusPrinter:
    """The ``on_progress`` callback of ``hpo run``: prints only what is news, plus a heartbeat."""

    def __init__(
        self, workers: int, *, heartbeat_seconds: float = HEARTBEAT_SECONDS, write: Callable[[str], None] | None = None
    ) -> None:
        self._workers = workers
        self._heartbeat = heartbeat_seconds
        self._write = write or (lambda line: print(line, flush=True))
        self._started = False
        self._last_state: tuple | None = None
        self._last_at = -1e9
        self._last_line = ""

    def __call__(self, progress: Progress) -> None:
        c = progress.counts
        if not self._started and c.running == 0 and c.finished + c.failed == 0 and progress.workers_alive:
            if self._last_state is None or progress.elapsed - self._last_at >= self._heartbeat:
                still = "still " if self._last_state is not None else ""
                self._say(progress, f"[{clock(progress.elapsed)}] {still}starting {self._workers} worker(s) (loading data)...")
                self._last_state = ()
            return
        self._started = True
        state = (c.complete, c.pruned, c.failed, c.running, progress.best_trial, progress.workers_alive)
        if progress.workers_alive == 0 and state[:-1] == (self._last_state or ())[:-1]:
            return  # the workers exited after the last news: the final lines say the rest
        if state != self._last_state:
            line = status_line(progress, self._workers)
            if line.split("] ", 1)[-1] != self._last_line.split("] ", 1)[-1]:  # e.g. a worker left at a normal finish
                self._say(progress, line)
            self._last_state = state
        elif progress.elapsed - self._last_at >= self._heartbeat:
            eta = eta_seconds(progress)
            self._say(
                progress,
                f"[{clock(progress.elapsed)}] still running: {c.finished}"
                f"{'/' + str(progress.n_trials) if progress.n_trials else ''} finished, {c.running} running"
                + (f"; ETA ~{clock(eta)}" if eta else ""),
            )

    def _say(self, progress: Progress, line: str) -> None:
        self._write(line)
        self._last_at = progress.elapsed
        self._last_line = line


def final_lines(
    result: LaunchResult, explicit_storage: bool, *, best_config: str | None = None, headline: Headline | None = None,
    total_seconds: float | None = None,
) -> list[str]:
    """The end of ``hpo run`` (and ``hpo demo``): totals, the headline, where it all is and the commands to look at it.

    ``headline``: the study's (:func:`hpo.results.compute_headline`; without one, only the best value is
    named); ``best_config``: the file the best trial was already exported to (the demo's); ``total_seconds``:
    the whole job's time when it is more than the study's (the demo's), said once.
    """
    from hpo.browse import browse_command

    progress = result.progress
    c = progress.counts
    storage = f" --storage {shlex.quote(redact(result.storage_url))}" if explicit_storage else ""
    name = shlex.quote(result.study_name)
    trials = f"{c.complete} complete, {c.pruned} pruned, {c.failed} failed trials"
    if result.unfinished:  # no "done", and no export hints for a study that is not
        lines = [(
            f"stopped after {clock(progress.elapsed)}, not finished ({result.unfinished}): "
            f"{c.finished} of {progress.n_trials} trials finished ({trials})"
        )]
    elif total_seconds is None:
        lines = [f"done in {clock(progress.elapsed)}: {trials}"]
    else:  # one total time, not the study's beside the job's
        lines = [f"done in {clock(total_seconds)}: {trials}; exported, retrained, tested"]
    if headline is not None:
        lines += [line for line in headline.lines() if not (result.unfinished and line.startswith(EXPORT_HINTS))]
    elif progress.best_trial is None:
        lines.append("no complete trial: nothing to export yet")
    else:
        lines.append(f"best: {result.metric} = {progress.best_value:.4f} (trial {progress.best_trial})")
        if not result.unfinished:
            lines.append(f"export:  hpo export {name}{storage} --out best.toml   (then: hpo train --config best.toml)")
    if result.unfinished and not result.failure:  # a study stopped on its failures stops again at once
        lines.append(f"resume:  the same `hpo run` command runs the {max(0, (progress.n_trials or 0) - c.finished)} "
                     "trials left")
    if best_config is not None:
        lines.append(f"config:  {best_config}   (retrain: hpo train --config {shlex.quote(best_config)})")
    lines.append(f"storage: {redact(result.storage_url)}  study: {result.study_name}")
    lines.append(f"browse:  {browse_command(result.storage_url, storage_given=explicit_storage)}")
    lines.append(f"report:  hpo report {name}{storage} --out {shlex.quote('reports/' + result.study_name)}")
    lines.append(f"look:    hpo show {name}{storage}")
    return lines
