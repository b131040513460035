"""Warm spare recorders: a recorder whose kernel has gone waits a while for the next kernel.

A recorder's own work for a notebook is small; what it costs is importing what it writes with
(pandas, scikit-learn to read the models it is sent, skops, SQLAlchemy, pyarrow): 2.5-3 s of CPU,
paid again by every kernel that tracks a run -- a third of a short notebook's CPU. So once its
kernel's records are written, a recorder waits :data:`SPARE_ENV` seconds (default
:data:`DEFAULT_S`) on a Unix socket in a folder only its user can enter; the next kernel of the
same user, interpreter and ``sys.path`` takes it over instead of starting a process: it hands its
environment, working folder and job lock (:data:`.recorder.LOCK_ENV`) over the socket, and the
recorder serves it exactly as it serves the kernel that started it.

A spare is only kept while it can run as a new process would: it must not have imported code
from outside the installed packages (a module of the user's folder could have changed), and it
refuses a kernel (and exits) when any module file it has loaded changed since (an upgrade, an
edit of mlops_nb itself). At most :data:`MAX_SPARES` wait per interpreter and path.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..spares import module_files as _module_files
from ..spares import peer, private_folder, read_exactly, seconds_from_env

#: Seconds a recorder whose kernel has gone waits for another (0: it exits at once).
SPARE_ENV = "MLOPS_NB_RECORDER_SPARE_S"
DEFAULT_S = 600.0
#: Spare recorders waiting at once per interpreter and ``sys.path``.
MAX_SPARES = 2
#: The file descriptor of the job lock a recorder started by Popen holds (see recorder.LOCK_ENV).
LOCK_FD_ENV = "MLOPS_NB_RECORDER_LOCK_FD"
_HANDSHAKE_S = 5.0


def spare_seconds() -> float:
    """How long a recorder waits for another kernel, from :data:`SPARE_ENV`."""
    return seconds_from_env(SPARE_ENV, DEFAULT_S)


def key(executable: str, python_path: str) -> str:
    """Which spares may serve a kernel: same interpreter, same import path."""
    return hashlib.sha256(f"{executable}\0{python_path}".encode()).hexdigest()[:20]


def folder() -> Path | None:
    """The folder of this user's spare sockets, or None when it cannot be made private."""
    return private_folder("mlops_nb-recorders")


# ---- the kernel's side ---------------------------------------------------------------------
def take(env: dict[str, str], cwd: str, lock_fd: int | None) -> tuple[socket.socket, int] | None:
    """Hand this kernel to a waiting spare: (its connected socket, its pid), or None."""
    where = folder() if spare_seconds() > 0 else None
    if where is None:
        return None
    payload = pickle.dumps({"env": env, "cwd": cwd}, protocol=pickle.HIGHEST_PROTOCOL)
    for path in sorted(where.glob(f"{key(sys.executable, env.get('PYTHONPATH', ''))}-*.sock")):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_HANDSHAKE_S)
        try:
            sock.connect(str(path))
            pid, uid = peer(sock)
            if uid != os.getuid():
                raise OSError("a spare of another user")
            socket.send_fds(sock, [len(payload).to_bytes(8, "big")], [] if lock_fd is None else [lock_fd])
            sock.sendall(payload)
            if read_exactly(sock, 2) != b"ok":
                raise OSError("the spare declined")
        except ConnectionRefusedError:  # its recorder died without removing the socket
            sock.close()
            path.unlink(missing_ok=True)
            continue
        except OSError:  # taken by another kernel meanwhile, declined, or slow: the next one
            sock.close()
            continue
        sock.settimeout(None)
        return sock, pid
    return None


# ---- the recorder's side -------------------------------------------------------------------
def linger(serve: Callable[[BinaryIO, BinaryIO], None]) -> None:
    """Wait as a spare and ``serve`` each kernel that takes this process over; return when none
    comes within :func:`spare_seconds`, or when this process should not serve another."""
    seconds = spare_seconds()
    where = folder() if seconds > 0 else None
    if where is None:
        return
    own_key = key(sys.executable, os.environ.get("PYTHONPATH", ""))
    path = where / f"{own_key}-{os.getpid()}.sock"
    while _reusable() and len(list(where.glob(f"{own_key}-*.sock"))) < MAX_SPARES:
        loaded = _module_files()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            listener.listen(1)
            listener.settimeout(seconds)
            conn, _ = listener.accept()
        except OSError:  # no kernel came in time (socket.timeout is an OSError), or no socket
            return
        finally:
            listener.close()
            path.unlink(missing_ok=True)  # taken: no second kernel may connect
        with conn:
            handed = _handover(conn, loaded)
            if handed is None:
                return
            inbox, outbox, lock_fds = handed
            try:
                serve(inbox, outbox)
            finally:
                for fd in lock_fds:  # the job that waits on the lock may go on
                    os.close(fd)
                for f in (inbox, outbox):
                    try:
                        f.close()
                    except OSError:
                        pass
                _shutdown(conn)


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _handover(conn: socket.socket, loaded: dict[str, int]) -> tuple[BinaryIO, BinaryIO, list[int]] | None:
    """Take the kernel's environment and lock; None (the kernel is declined) when unsafe."""
    conn.settimeout(_HANDSHAKE_S)
    lock_fds: list[int] = []
    try:
        _, uid = peer(conn)
        size, lock_fds, _, _ = socket.recv_fds(conn, 8, 1)
        handed: dict[str, Any] = pickle.loads(read_exactly(conn, int.from_bytes(size, "big")))
        if uid != os.getuid() or _module_files() != loaded:
            raise OSError("another user, or a module file changed since this process loaded it")
        os.chdir(handed["cwd"])
        os.environ.clear()
        os.environ.update(handed["env"])
        _forget_settings()
        conn.sendall(b"ok")
    except Exception:  # the kernel starts a recorder of its own
        for fd in lock_fds:
            os.close(fd)
        try:
            conn.sendall(b"no")
        except OSError:
            pass
        return None
    conn.settimeout(None)
    return conn.makefile("rb"), conn.makefile("wb"), lock_fds


def _forget_settings() -> None:
    """What the last kernel's environment decided: the next kernel's decides afresh."""
    from .. import config
    from ..store import clear_cache

    config.reset()
    clear_cache()


def _reusable() -> bool:
    """Whether every module loaded here comes from the installed packages or mlops_nb itself."""
    from .records import installed_roots

    roots = (*installed_roots(), os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), ""))
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and not os.path.realpath(path).startswith(roots):
            return False
    return True
