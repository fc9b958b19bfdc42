"""Workers die with their launcher: a worker of ``hpo run`` stops when the ``hpo run`` process is gone.

``hpo run`` names itself in ``$HPO_PARENT_PID`` for its workers. A worker that finds it calls
:func:`die_with_parent` first thing: on Linux the kernel then signals it when the launcher dies
(``prctl(PR_SET_PDEATHSIG)``), even by SIGKILL; everywhere a watchdog thread notices the launcher is
gone (its parent process changed) within :data:`WATCH_S` and signals it itself where the kernel could
not. The signal (:data:`PARENT_DEATH_SIGNAL`) interrupts the worker once, as Ctrl-C would: it fails its
running trial and queues it again, so a later run re-runs that configuration. The kernel may send it once
per thread of the dying launcher; the worker acts on the first only. :data:`EXIT_GRACE_S` after the
first, a worker still there exits regardless.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from types import FrameType

logger = logging.getLogger("hpo.worker")

PARENT_ENV = "HPO_PARENT_PID"
PARENT_DEATH_SIGNAL = signal.SIGUSR1
WATCH_S = 0.5
"""How often the watchdog looks for its launcher."""
EXIT_GRACE_S = 4.0
"""Seconds an orphaned worker gets to fail its trial cleanly before it exits regardless."""
EXIT_CODE = 130
_PR_SET_PDEATHSIG = 1
_orphaned = threading.Event()
_exit_timer_lock = threading.Lock()
_exit_timer: list[threading.Timer] = []


def parent_environment() -> dict[str, str]:
    """What a launcher adds to a worker's environment so that the worker dies with it."""
    return {PARENT_ENV: str(os.getpid())}


def die_with_parent(parent_pid: int | None = None) -> bool:
    """Stop this process when ``parent_pid`` (default ``$HPO_PARENT_PID``) dies; whether a watch was set up.

    Without a parent to watch (a worker started by hand or by SLURM) nothing changes. Call it from
    the main thread.
    """
    if parent_pid is None:
        value = os.environ.get(PARENT_ENV, "")
        if not value.isdigit():
            return False
        parent_pid = int(value)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background: hpo run stops it by SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(PARENT_DEATH_SIGNAL, _on_parent_death)
    by_kernel = _set_parent_death_signal(PARENT_DEATH_SIGNAL)
    threading.Thread(target=_watch, args=(parent_pid, by_kernel), name="parent-watch", daemon=True).start()
    return True


def _set_parent_death_signal(signum: int) -> bool:
    """Linux's ``prctl(PR_SET_PDEATHSIG, signum)``: whether the kernel will signal this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, by_kernel: bool) -> None:
    """Poll for the launcher (also covers its death before the kernel's signal was armed)."""
    while os.getppid() == parent_pid:
        if _orphaned.wait(WATCH_S):
            return
    logger.warning("hpo run (the launcher) is gone: this worker stops, its running trial is queued again")
    _start_exit_timer()  # also when the main thread is stuck where no signal handler runs
    if not by_kernel or not _orphaned.wait(WATCH_S):
        os.kill(os.getpid(), PARENT_DEATH_SIGNAL)


def _on_parent_death(_signum: int, _frame: FrameType | None) -> None:
    """The first parent-death signal interrupts the worker; the exit timer covers one that does not stop."""
    if _orphaned.is_set():
        return
    _orphaned.set()
    _start_exit_timer()
    raise KeyboardInterrupt("hpo run (the launcher) is gone")


def _start_exit_timer() -> None:
    """Exit :data:`EXIT_GRACE_S` from the first call on, whatever the worker is doing then."""
    with _exit_timer_lock:
        if _exit_timer:
            return
        timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(EXIT_CODE,))
        timer.daemon = True
        timer.start()
        _exit_timer.append(timer)
