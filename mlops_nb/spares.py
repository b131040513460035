"""What every warm spare process shares: a private socket folder, peer checks, freshness of code.

Spare recorders (:mod:`mlops_nb.tracking.spare`) and the warm CLI server
(:mod:`mlops_nb.cli_server`) both wait on a Unix socket for a process of the same user to take
them over.  This module holds the pieces they share.  It imports only the standard library's
light modules: the ``mlops-nb`` launcher imports it before it knows whether to start anything.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path

_CRED = struct.Struct("3i")  # pid, uid, gid of SO_PEERCRED
#: The longest folder a socket name of ours ("<20 hex>-<pid>.sock") still fits in (sun_path: 107 bytes).
_MAX_FOLDER_BYTES = 107 - len("/0123456789abcdef0123-4194304.sock")


def seconds_from_env(name: str, default: float) -> float:
    """Seconds from the environment variable ``name`` (``default`` when unset; a note when not a number)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return max(0.0, float(text))
    except ValueError:
        print(f"mlops: {name}={text!r} is not a number of seconds; using {default:.0f}", file=sys.stderr)
        return default


def private_folder(prefix: str) -> Path | None:
    """``<runtime dir>/<prefix>-<uid>``, made 0700; None when it cannot be made private."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base or _temp_dir()) / f"{prefix}-{os.getuid()}"
    if len(os.fsencode(path)) > _MAX_FOLDER_BYTES:  # a socket's path is at most 107 bytes
        path = Path(_temp_dir()) / f"{prefix}-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or open to others: a socket there could be anyone's
    return path


def _temp_dir() -> str:
    import tempfile  # only without XDG_RUNTIME_DIR: tempfile costs the launcher a few ms

    return tempfile.gettempdir()


def peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of the connected Unix socket ``sock``."""
    pid, uid, _ = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return pid, uid


def module_files() -> dict[str, int]:
    """Modification time of every loaded module's file: a change means this process runs old code."""
    files = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            try:
                files[path] = os.stat(path).st_mtime_ns
            except OSError:
                files[path] = -1
    return files


def read_exactly(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock``; OSError when it closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("the connection closed")
        data += chunk
    return data
