"""Which process records a run, and whether that process is still alive.

A run is ``running`` while the process that started it lives.  A killed
kernel or job never writes its final status, so every run records its host,
pid and the process's start time; whoever opens the store later on the same
host marks runs whose process is gone as ``interrupted``.  The start time
tells a reused pid (a new process that got the same number) from the
original one.

psutil is used when installed (IPython depends on it); otherwise Linux's
``/proc``, and as a last resort a signal-0 probe of the pid alone.
"""

from __future__ import annotations

import functools
import os
import socket
from typing import Any

# Start times of one process read twice may differ by clock-tick rounding.
_START_TOLERANCE_S = 1.0

try:  # pragma: no cover - which branch runs depends on the environment
    import psutil
except ImportError:  # pragma: no cover
    psutil = None


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
    """Start of process ``pid`` in seconds since the epoch; None when unknown or not running."""
    if psutil is not None:
        try:
            return psutil.Process(pid).create_time()
        except (psutil.Error, OSError):
            return None
    stat = _proc_stat(pid)
    if stat is None:
        return None
    try:
        return _boot_time() + int(stat[19]) / os.sysconf("SC_CLK_TCK")
    except (ValueError, IndexError, OSError):
        return None


def process_gone(pid: int, started: float | None) -> bool:
    """Whether the process recorded as (``pid``, ``started``) on this host has ended.

    A zombie (killed, not yet reaped by its parent) counts as ended; so does a
    live process whose start time differs from ``started`` (the pid was reused).
    """
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
    if os.path.isdir("/proc/self"):
        stat = _proc_stat(pid)
        if stat is None or stat[0] == "Z":
            return True
        now_started = process_start_time(pid)
        return started is not None and now_started is not None and abs(now_started - started) > _START_TOLERANCE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


@functools.lru_cache(maxsize=1)
def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("btime"):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")
