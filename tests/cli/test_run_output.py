"""What `hpo run` prints: news only, short lines, a heartbeat, and next steps (also through a real run)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpo.cli._progress import StatusPrinter, eta_seconds
from hpo.results import Counts
from hpo.run import Progress
from hpo.run._worker import TRIAL_LINE_WIDTH, _with_params
from tests.run.test_workers import sqlite_url, tiny_study

LINE_CAP = 120


def _progress(elapsed: float, complete: int = 0, running: int = 0, alive: int = 2, mean: float | None = None) -> Progress:
    best = (0.5, 0) if complete else (None, None)
    return Progress("s", elapsed, Counts(complete=complete, running=running), 10, *best, alive, mean)


def test_status_lines_say_only_what_changed_with_a_heartbeat_in_between() -> None:
    lines: list[str] = []
    printer = StatusPrinter(2, heartbeat_seconds=60, write=lines.append)
    for second in (0, 2, 4, 61):
        printer(_progress(second))  # workers still importing and loading data
    assert lines == ["[00:00] starting 2 worker(s) (loading data)...", "[01:01] still starting 2 worker(s) (loading data)..."]
    lines.clear()
    for second in (62, 64, 66):
        printer(_progress(second, running=2))
    printer(_progress(70, complete=2, running=2, mean=10.0))
    printer(_progress(140, complete=2, running=2, mean=10.0))
    assert lines[0] == "[01:02] 0/10 finished (0 complete, 0 pruned, 0 failed), 2 running"
    assert lines[1] == "[01:10] 2/10 finished (2 complete, 0 pruned, 0 failed), 2 running; best 0.5000 (trial 0); ETA ~00:40"
    assert lines[2] == "[02:20] still running: 2/10 finished, 2 running; ETA ~00:40"
    assert len(lines) == 3
    printer(_progress(141, complete=2, running=2, alive=0, mean=10.0))  # the end: the final lines follow
    assert len(lines) == 3


def test_eta_shares_the_remaining_trials_between_live_workers() -> None:
    assert eta_seconds(_progress(0, complete=4, alive=2, mean=3.0)) == pytest.approx(6 * 3.0 / 2)
    assert eta_seconds(_progress(0, complete=4, alive=2, mean=None)) is None


def test_trial_lines_abbreviate_and_cut_parameters_to_the_width() -> None:
    params = {f"a_rather_long_parameter_name_{i}": 0.000123456 * i for i in range(12)}
    line = _with_params("worker 12: trial 1234 complete 0.6694 in 10.6s, new best", params)
    assert len(line) <= TRIAL_LINE_WIDTH and line.endswith(" ...]") and "a_rat_lon_par_nam_0=0" in line
    assert _with_params("worker 0: trial 1 complete 0.1 in 1.0s", {"lr": 0.01}) == "worker 0: trial 1 complete 0.1 in 1.0s [lr=0.01]"


@pytest.mark.slow
def test_a_real_hpo_run_prints_short_news_and_the_next_steps(tmp_path, tiny_dataset, tiny_data_config) -> None:
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="printed", n_trials=3)
    env = {**os.environ, "HPO_HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", url, "--workers", "2"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout.splitlines()
    status = [line for line in printed if line.startswith("[")]
    trials = [line for line in done.stderr.splitlines() if re.search(r"hpo\.worker: worker \d+: trial \d+ (complete|pruned|failed) ", line)]
    assert status[0] == "[00:00] starting 2 worker(s) (loading data)..."
    bodies = [line.split("] ", 1)[1] for line in status]
    assert len(bodies) == len(set(bodies)), status  # no line repeats itself
    assert any(body.startswith("3/3 finished (3 complete") for body in bodies), status
    assert len(trials) == 3 and all(" complete " in line for line in trials), done.stderr
    assert all(len(line) <= LINE_CAP for line in status + trials), [line for line in status + trials if len(line) > LINE_CAP]
    text = done.stdout
    assert re.search(r"\nwinner:  trial \d+, val_balanced_accuracy = 0\.\d{4} \(maximize\)\n", text)
    assert f"hpo dashboard --storage {url}" in text and f"(or: optuna-dashboard {url} --artifact-dir " in text
    report = next(line for line in printed if line.startswith("report:  "))
    assert shlex.split(report.removeprefix("report:  ")) == ["hpo", "report", "printed", "--storage", url, "--out", "reports/printed"]
    assert f"\nexport:  hpo export printed --storage {url} --out best.toml\n" in text
    # the headline, the same one hpo show prints
    headline = [line for line in printed if line.startswith(("winner: ", "gain: ", "selected: ", "export: ", "retrain: "))]
    names = [line.split(":", 1)[0] for line in headline]  # selected: when a tuned trial beat a complete reference
    assert names in (["winner", "gain", "export", "retrain"], ["winner", "gain", "selected", "export", "retrain"])
    assert headline[1].startswith("gain:    +") or headline[1].startswith("gain:    -") or "(the defaults) won" in headline[1]
    assert "over the reference (trial 0, the defaults" in headline[1] or "(the defaults) won" in headline[1]
    shown = subprocess.run([sys.executable, "-m", "hpo.cli", "show", "printed", "--storage", url],
                           capture_output=True, text=True, env=env, timeout=120).stdout.splitlines()
    assert shown[1:1 + len(headline)] == headline
    assert "workers left" not in text  # a normal finish is no news

    # run again: finished already, said at once, with how to extend it; no worker starts
    started = time.monotonic()
    again = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", url, "--workers", "2"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.splitlines()[0] == (
        "hpo run: study 'printed' already has 3 finished trials (n_trials = 3); use --n-trials 6 to extend it")
    assert again.stdout.splitlines()[1:1 + len(headline)] == headline
    assert "hpo.worker" not in again.stderr and time.monotonic() - started < 30  # workers take 20-30 s to start


def test_a_normal_finish_says_nothing_about_workers_left() -> None:
    lines: list[str] = []
    printer = StatusPrinter(2, write=lines.append)
    printer(_progress(5, complete=2, running=2))
    printer(Progress("s", 8, Counts(complete=10), 10, 0.5, 0, 2, 1.0))  # all 10 finished, the workers exiting
    printer(Progress("s", 9, Counts(complete=10), 10, 0.5, 0, 1, 1.0))  # one has gone: no news, no second line
    assert lines[-1] == "[00:08] 10/10 finished (10 complete, 0 pruned, 0 failed), 0 running; best 0.5000 (trial 0)"
    assert lines[-2] != lines[-1]
    printer(Progress("s", 12, Counts(complete=10, failed=3), 20, 0.5, 0, 0, 1.0))  # they died with trials to go
    assert lines[-1].endswith("; 0 of 2 workers left")
    printer(Progress("s", 14, Counts(complete=11, failed=3), 20, 0.5, 0, 1, 1.0))
    assert "; 1 of 2 workers left" in lines[-1]


def test_pruned_trials_give_their_full_reason_on_a_line_of_its_own(caplog) -> None:
    import logging

    import optuna
    from optuna.trial import TrialState

    from hpo.run._worker import _log_trial

    study = optuna.create_study()
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)})
    reason = ("pruned by MedianPruner at step 23: best val_balanced_accuracy so far 0.7123 < median 0.8012 "
              "of 12 complete trials at step 23")
    with caplog.at_level(logging.INFO, logger="hpo.worker"):
        _log_trial(study, trial, TrialState.PRUNED, None, reason, 12.3, "worker 0", "val_balanced_accuracy", None)
    first, second = [r.getMessage() for r in caplog.records if r.name == "hpo.worker"]
    assert first.startswith("worker 0: trial 0 pruned in 12.3s [lr=") and "..." not in first
    assert second == f"worker 0: trial 0 {reason}"  # in full, not cut at "va..."
    assert len(first) <= TRIAL_LINE_WIDTH


def test_studies_counts_its_studies_in_good_english(tmp_path, capsys) -> None:
    import optuna

    from hpo.cli import main

    url = f"sqlite:///{tmp_path / 'p.db'}"
    optuna.create_study(storage=url, study_name="one")
    assert main(["studies", "--storage", url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"(1 study in {url})"
    optuna.create_study(storage=url, study_name="two")
    assert main(["studies", "--storage", url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"(2 studies in {url})"


def test_the_report_folder_hpo_run_suggests_is_ignored_by_git() -> None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", "reports/printed/report.html"], cwd=root, check=False)
    assert done.returncode == 0  # `hpo report ... --out reports/<study>` leaves nothing to commit by mistake


def _result(unfinished: str = "", *, failure: str = "", complete: int = 3):
    from hpo.run import LaunchResult

    progress = Progress("s", 75.0, Counts(complete=complete, failed=1), 10, 0.8, 2, 0)
    return LaunchResult("s", "sqlite:////tmp/x.db", progress, [3, 3], failure=failure, unfinished=unfinished,
                        storage_problem=unfinished, metric="val_balanced_accuracy")


def test_a_run_that_stops_before_its_budget_says_so_without_done_or_export_hints() -> None:
    from hpo.cli._progress import final_lines

    why = "storage sqlite:////tmp/x.db was unreachable for longer than the outage window (6 s)"
    lines = final_lines(_result(why), explicit_storage=True)
    assert lines[0] == f"stopped after 01:15, not finished ({why}): 3 of 10 trials finished (3 complete, 0 pruned, 1 failed trials)"
    assert not any(line.startswith(("done in", "export:", "retrain:")) for line in lines), lines
    assert any(line.startswith("resume:  the same `hpo run` command runs the 7 trials left") for line in lines)
    stopped_on_failures = final_lines(_result("3 failed trials", failure="3 failed trials"), explicit_storage=False)
    assert not any(line.startswith("resume:") for line in stopped_on_failures)  # it would stop again at once
    finished = final_lines(_result(complete=10), explicit_storage=False)
    assert finished[0].startswith("done in 01:15") and any(line.startswith("export:") for line in finished)


def test_why_a_run_is_unfinished() -> None:
    from hpo.run._launcher import unfinished_reason

    assert unfinished_reason(Counts(complete=4), 4, None, [0, 0]) == ""
    assert unfinished_reason(Counts(complete=1), None, 60, [0]) == ""  # a study without n_trials ends on its timeout
    assert unfinished_reason(Counts(complete=1), 4, 60, [0, 0]) == "timeout of 60 s reached"
    assert unfinished_reason(Counts(complete=1), 4, None, [0, 3], problem="storage down") == "storage down"
    assert unfinished_reason(Counts(complete=1), 4, None, [1, 0], failure="3 failed") == "3 failed"
    assert unfinished_reason(Counts(complete=1), 4, None, [0, -9]) == "worker exit codes [-9]"
