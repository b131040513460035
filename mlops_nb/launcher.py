"""The ``mlops-nb`` entry point: hands read-only commands to a warm server, runs the rest itself.

A command that reads the registry spends most of its time importing (SQLAlchemy alone is ~0.3 s),
not reading.  So after a read-only command (:func:`read_only`) this process leaves a server
behind (:mod:`mlops_nb.cli_server`) that has those imports done and waits
``MLOPS_NB_CLI_SPARE_S`` seconds (default 600; 0: none) on a socket in a folder only this user
may enter.  The next read-only command of the same interpreter, ``sys.path`` and interpreter
environment sends it its arguments, environment, working folder, umask and standard streams; a
child forked by the server runs the command exactly as this process would, and its exit status
comes back.  Anything else (a write, no server, a server that declines) runs here, as before.

This module is imported by every ``mlops-nb`` command, so it imports only light standard modules:
click and the command's own modules are imported only on the path that needs them.
"""

from __future__ import annotations

import marshal
import os
import signal
import socket
import struct
import sys
import zlib
from pathlib import Path  # (loaded already: mlops_nb's config uses it)

from . import spares

#: Seconds a server waits for the next command (0: no server is started).
SPARE_ENV = "MLOPS_NB_CLI_SPARE_S"
DEFAULT_S = 600.0
#: Servers waiting at once per key (two cold commands at the same time may each start one).
MAX_SERVERS = 2
FOLDER_PREFIX = "mlops_nb-cli"
_HANDSHAKE_S = 5.0
_SIZE = struct.Struct("!Q")
_CODE = struct.Struct("!i")

#: Commands that only read: command -> the sub-commands that only read (None: the group alone).
READ_ONLY: dict[str, frozenset[str | None] | None] = {
    "summary": None, "show": None, "status": None, "runs": None, "lineage": None, "alerts": None,
    "jobs": frozenset({None, "list", "show"}),
    "models": frozenset({None, "list", "versions", "show", "requests"}),
    "audit": frozenset({None, "list", "verify", "head"}),
    "data": frozenset({None, "show"}),
}  # fmt: skip
#: Options of the ``mlops-nb`` group that take a value (``--store URL``).
_VALUED = frozenset({"--store", "--artifacts", "--project"})


def read_only(args: list[str]) -> bool:
    """Whether ``mlops-nb ARGS`` only reads: a command of :data:`READ_ONLY`, or help / the version."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "--version" or args[i] == "--help":
            return True
        i += 2 if args[i] in _VALUED else 1
    rest = args[i:]
    words = [a for a in rest if not a.startswith("-")]
    if "--help" in rest and len(words) <= 2:  # `mlops-nb models promote --help`: click prints help only
        return True
    if not rest:
        return True  # the group's own help
    sub = READ_ONLY.get(rest[0], "absent")
    if sub == "absent":
        return False
    if sub is None:
        return True
    assert isinstance(sub, frozenset)
    return (words[1] if len(words) > 1 else None) in sub


def server_key() -> str:
    """What a server must share with a command to run it as the command's own process would."""
    shaping = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith(("PYTHON", "LC_")) or k == "LANG")
    return "\0".join([sys.executable, repr(sys.flags), repr(sorted(sys._xoptions.items())), *sys.path, "", *shaping])


def key_id(key: str) -> str:
    """The key as a socket file name's stem (the server compares the whole key itself)."""
    return f"{zlib.crc32(key.encode('utf-8', 'surrogateescape')):08x}{len(key):012x}"


def spare_seconds() -> float:
    return spares.seconds_from_env(SPARE_ENV, DEFAULT_S)


def main() -> None:
    """``mlops-nb``: warm when a server waits and the command only reads, else as it always ran."""
    args = sys.argv[1:]
    warm = read_only(args) and spare_seconds() > 0
    key = server_key() if warm else ""
    if warm:
        served = _run_warm(key)
        if served is not None:
            sys.exit(served)
    from .cli import main as cli_main

    try:
        cli_main()
    finally:
        if warm:
            _start_server(key)


# ---- the client's side ---------------------------------------------------------------------
def _servers(key: str) -> int:
    where = spares.private_folder(FOLDER_PREFIX)
    return 0 if where is None else len(list(where.glob(f"{key_id(key)}-*.sock")))


def _run_warm(key: str) -> int | None:
    """The exit status of this command run by a waiting server, or None when none took it."""
    where = spares.private_folder(FOLDER_PREFIX)
    if where is None:
        return None
    try:
        cwd = os.getcwd()
        for fd in (0, 1, 2):
            os.fstat(fd)  # a closed standard stream: a fresh process would see it closed, run here
    except OSError:
        return None
    umask = os.umask(0o22)
    os.umask(umask)
    payload = marshal.dumps({"key": key, "argv": sys.argv, "env": dict(os.environb), "cwd": cwd, "umask": umask})
    paths = sorted(where.glob(f"{key_id(key)}-*.sock"))
    if not paths:
        return None
    # From here a Ctrl-C belongs to the command, wherever it runs: kept until we know which process that is.
    forward = _Forward()
    try:
        served = _hand_over(paths, payload, forward)
    finally:
        if forward.child is None:
            forward.restore()
    if served is None and forward.pending:
        signal.raise_signal(forward.pending[0])  # no server took it: as if it came to a cold command now
    return served


class _Forward:
    """Signals to the launcher, forwarded to the child that runs the command once it is known."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.child: int | None = None
        self.pending: list[int] = []
        # A signal this process ignores (a background job's SIGINT) the command would ignore as well.
        self.saved = {signum: signal.signal(signum, self._on_signal) for signum in self.SIGNALS
                      if signal.getsignal(signum) is not signal.SIG_IGN}  # fmt: skip

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.child is None:
            self.pending.append(signum)
            return
        try:
            os.kill(self.child, signum)
        except ProcessLookupError:
            pass

    def to(self, child: int) -> None:
        self.child = child
        for signum in self.pending:
            self._on_signal(signum, None)
        self.pending.clear()

    def restore(self) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def _hand_over(paths: list[Path], payload: bytes, forward: _Forward) -> int | None:
    """Offer the command to each waiting server in turn: the exit status from the first that takes it."""
    for path in paths:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_HANDSHAKE_S)
        try:
            sock.connect(str(path))
            if spares.peer(sock)[1] != os.getuid():
                raise OSError("a server of another user")
            socket.send_fds(sock, [_SIZE.pack(len(payload))], [0, 1, 2])
            sock.sendall(payload)
            answer = spares.read_exactly(sock, 2)
            if answer != b"ok":
                raise OSError("the server declined")
            child = _CODE.unpack(spares.read_exactly(sock, _CODE.size))[0]
        except ConnectionRefusedError:  # its server died without removing the socket
            sock.close()
            path.unlink(missing_ok=True)
            continue
        except OSError:  # declined (its code changed), busy past the handshake, or gone: the next one
            sock.close()
            continue
        forward.to(child)
        return _wait(sock)
    return None


def _wait(sock: socket.socket) -> int:
    """The exit status of the server's child running the command (128+N: killed by signal N)."""
    sock.settimeout(None)
    try:
        code = _CODE.unpack(spares.read_exactly(sock, _CODE.size))[0]
    except OSError:
        print("mlops-nb: the warm server ended before the command; run it again", file=sys.stderr)
        return 1
    return 128 - code if code < 0 else code


def _start_server(key: str) -> None:
    """Start a detached server for the next read-only command; never fails the command."""
    try:
        if _servers(key):  # one waits already (it may be serving another command right now)
            return
        code = f"import sys; sys.path[:] = {sys.path!r}; from mlops_nb.cli_server import main; main({key_id(key)!r})"
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
            # A new session: no terminal's signals reach it, and the shell's prompt does not wait for it.
            os.posix_spawn(sys.executable, [sys.executable, *_interpreter_options(), "-c", code], os.environ,
                           file_actions=actions, setsid=True,
                           setsigdef=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD))  # fmt: skip
        finally:
            os.close(devnull)
    except Exception:  # a server is only a speed-up
        pass


def _interpreter_options() -> list[str]:
    """The options this interpreter was started with (``-X importtime``...), for a server like it."""
    options, argv, i = [], sys.orig_argv, 1
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-", "-c", "-m"):
        takes_value = argv[i] in ("-X", "-W", "--check-hash-based-pycs")
        options += argv[i : i + 2] if takes_value else argv[i : i + 1]
        i += 2 if takes_value else 1
    return options


if __name__ == "__main__":
    main()
