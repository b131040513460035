"""Which process records a run, and whether that process is still alive.

A run is ``running`` while the process that started it lives.  A killed
kernel or job never writes its final status, so every run records its host,
pid and the process's start stamp; whoever opens the store later on the same
host marks runs whose process is gone as ``interrupted``.  The start stamp
tells a reused pid (a new process that got the same number) from the
original one.

On Linux the stamp is the process's start in seconds after boot, read from
``/proc``: an epoch time there is derived from the boot time, which moves
whenever the wall clock is stepped or a virtual machine is paused, so a live
process would look like a reused pid.  Elsewhere psutil's creation time
(epoch seconds) is used, and as a last resort a signal-0 probe of the pid.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Any

# Start times of one process read twice may differ by clock-tick rounding.
_START_TOLERANCE_S = 1.0
# Seconds after boot never reach this (31 years); stamps above it are epoch times.
_EPOCH_FLOOR_S = 1e9
_HAS_PROC = os.path.isdir("/proc/self")



@functools.lru_cache(maxsize=1)
def _psutil():
    """psutil where there is no /proc to read (imported only there: 15 ms)."""
    try:  # pragma: no cover - which branch runs depends on the environment
        import psutil
    except ImportError:  # pragma: no cover
        return None
    return psutil


@functools.lru_cache(maxsize=1)
def host_name() -> str:
    """This machine's name as recorded with runs."""
    return socket.gethostname()


def current_process() -> dict[str, Any]:
    """``host``, ``pid`` and ``process_start`` of this process, for :meth:`SqlStore.start_run`."""
    return dict(_identity(os.getpid()))  # keyed by pid: a forked child is another process


@functools.lru_cache(maxsize=4)
def _identity(pid: int) -> tuple[tuple[str, Any], ...]:
    return (("host", host_name()), ("pid", pid), ("process_start", process_start_time(pid)))


def process_start_time(pid: int) -> float | None:
    """Start stamp of process ``pid`` (see the module docstring); None when unknown or not running."""
    if _HAS_PROC:
        stat = _proc_stat(pid)
        return None if stat is None else _boot_relative_start(stat)
    psutil = _psutil()
    if psutil is not None:
        try:
            return psutil.Process(pid).create_time()
        except (psutil.Error, OSError):
            return None
    return None


def process_gone(pid: int, started: float | None) -> bool:
    """Whether the process recorded as (``pid``, ``started``) on this host has ended.

    A zombie (killed, not yet reaped by its parent) counts as ended; so does a
    live process whose start time differs from ``started`` (the pid was reused).
    """
    if _HAS_PROC:
        stat = _proc_stat(pid)
        if stat is None or stat[0] == "Z":
            return True
        if started is None or started > _EPOCH_FLOOR_S:
            return False  # no stamp, or an epoch stamp from an older version: cannot be compared
        now_started = _boot_relative_start(stat)
        return now_started is not None and abs(now_started - started) > _START_TOLERANCE_S
    psutil = _psutil()
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
            return started is not None and abs(proc.create_time() - started) > _START_TOLERANCE_S
        except psutil.NoSuchProcess:
            return True
        except (psutil.Error, OSError):
            return False  # e.g. access denied: it exists
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False


def _boot_relative_start(stat: list[str]) -> float | None:
    """Seconds after boot at which the process of ``stat`` (from :func:`_proc_stat`) started."""
    try:
        return int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (ValueError, IndexError, OSError):
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


#: Set by a job runner for its papermill child: the pid it must not outlive.
PARENT_ENV = "MLOPS_NB_PARENT_PID"


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to send this process SIGTERM when ``parent_pid`` (its parent) dies.

    A job runner killed with SIGKILL (a Dask worker lost, a pod evicted) would
    otherwise leave its notebook running on, to record a second copy of a job the
    cluster already gave to another worker.  The kernel follows: ipykernel exits
    when its parent, papermill, is gone.  Elsewhere than Linux this does nothing.
    """
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
