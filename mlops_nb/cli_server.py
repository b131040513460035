"""The warm CLI server: read-only ``mlops-nb`` commands without paying for the imports each time.

Started detached by :mod:`mlops_nb.launcher` after a read-only command, it imports what those
commands need (click, the CLI, SQLAlchemy and its SQLite dialect, the commands' modules) and
nothing else: it reads no configuration and opens no store, so each command starts from the state
a new process would have.  It then waits ``MLOPS_NB_CLI_SPARE_S`` seconds after its last command
on a Unix socket in a folder only its user may enter.

For each command it forks a child that takes the command's environment, working folder, umask,
standard streams and arguments, runs ``mlops_nb.cli.main`` as the cold path does and exits with
its status; the server reports that status to the launcher.  The server stays single-threaded
(fork is safe) and waits with ``poll`` on the socket, the connections and a SIGCHLD wake-up pipe.
When a module file it loaded has changed (an upgrade, an edit of mlops_nb), it declines the
command (which then runs cold) and exits.
"""

from __future__ import annotations

import atexit
import importlib
import io
import marshal
import os
import select
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from . import spares
from .launcher import _CODE, _HANDSHAKE_S, _SIZE, FOLDER_PREFIX, MAX_SERVERS, key_id, server_key, spare_seconds

#: What the read-only commands import when they run; nothing here may read settings or open a store.
#: Nothing here may import pandas either (it doubled the server's memory, ~150 MB): so not
#: mlops_nb.monitoring.commands, whose package imports pandas; `alerts` imports it in its own child.
PRELOAD = (
    "mlops_nb.cli", "mlops_nb.lean_imports", "mlops_nb.store", "mlops_nb.store.sql", "mlops_nb.store.reaping",
    "mlops_nb.tracking.commands", "mlops_nb.tracking.spool", "mlops_nb.search.commands", "mlops_nb.search.query",
    "mlops_nb.registry.commands", "mlops_nb.registry", "mlops_nb.registry.lineage", "mlops_nb.registry.promotion",
    "mlops_nb.monitoring.commands",
    "mlops_nb.registry.tables", "mlops_nb.data.commands", "mlops_nb.jobs.commands", "mlops_nb.tracking.records",
    "sqlalchemy.dialects.sqlite.pysqlite", "sqlite3",
)  # fmt: skip
#: When set (to a file path) in a command's environment, its child appends "<server pid> <child pid>" there.
TRACE_ENV = "MLOPS_NB_CLI_TRACE"


def main(expected_id: str) -> None:
    """Serve read-only commands of this interpreter's key until idle for :func:`spare_seconds`."""
    seconds = spare_seconds()
    where = spares.private_folder(FOLDER_PREFIX)
    key = server_key()
    if seconds <= 0 or where is None or key_id(key) != expected_id:
        return
    os.chdir("/")  # hold no folder of the user's open; each command's child goes to its own
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # the command that needs it says what is wrong, as when run cold
            pass
    if len(list(where.glob(f"{expected_id}-*.sock"))) >= MAX_SERVERS:
        return
    path = where / f"{expected_id}-{os.getpid()}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        listener.listen(16)
        _Server(listener, path, key, seconds).run()
    finally:
        path.unlink(missing_ok=True)
        listener.close()


class _Server:
    def __init__(self, listener: socket.socket, path: Path, key: str, seconds: float) -> None:
        self.listener, self.path, self.key, self.seconds = listener, path, key, seconds
        self.loaded = spares.module_files()
        self.children: dict[int, socket.socket] = {}  # child pid -> its launcher's connection
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that the wake-up fd is written
        # Asked to stop (a logout, a test's clean-up): take no new command, but report the running ones.
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        signal.set_wakeup_fd(self.wake_w)
        self.stop = False
        self.idle_since = time.monotonic()
        self.stale = False

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while self.children or not self.stale:
            if self.children:
                timeout = None
            else:
                left = self.idle_since + self.seconds - time.monotonic()
                if left <= 0:
                    return
                timeout = left * 1000
            for fd, _ in poller.poll(timeout):
                if fd == self.wake_r:
                    while True:
                        try:
                            if not os.read(self.wake_r, 512):
                                break
                        except BlockingIOError:
                            break
                    self._reap(poller)
                    if self.stop and not self.stale:
                        self._retire(poller)
                elif fd == self.listener.fileno():
                    conn = self._accept()
                    if conn is not None:
                        poller.register(conn, select.POLLIN)
                    if self.stale:  # no more commands: finish the running ones, then exit
                        self._retire(poller)
                else:  # a launcher went away (killed) before its command ended: end the command as well
                    for pid, conn in self.children.items():
                        if conn.fileno() == fd:
                            poller.unregister(fd)
                            _kill(pid, signal.SIGHUP)
                            break
            self._reap(poller)  # a SIGCHLD may arrive between the poll and reading the pipe

    def _retire(self, poller: select.poll) -> None:
        """Take no more commands (the launcher starts a new server when none is listed)."""
        self.stale = True
        self.path.unlink(missing_ok=True)
        poller.unregister(self.listener)
        self.listener.close()

    def _accept(self) -> socket.socket | None:
        """Take one launcher's command and fork its child; None when declined or broken."""
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return None
        fds: list[int] = []
        try:
            conn.settimeout(_HANDSHAKE_S)
            _, uid = spares.peer(conn)
            size, fds, _, _ = socket.recv_fds(conn, _SIZE.size, 3)
            request = marshal.loads(spares.read_exactly(conn, _SIZE.unpack(size)[0]))
            if uid != os.getuid() or len(fds) != 3 or request.get("key") != self.key:
                raise OSError("another user, or a launcher of another interpreter")
            if spares.module_files() != self.loaded:
                # Old code would serve this command: it runs cold, and starts a server of the new code
                # (so the socket goes first: the launcher starts none while one is listed).
                self.stale = True  # run() retires the listener
                self.path.unlink(missing_ok=True)
                raise OSError("a module file changed")
            inherited = [self.listener.fileno(), self.wake_r, self.wake_w, *(c.fileno() for c in self.children.values())]
            pid = os.fork()
            if pid == 0:
                _child(conn, fds, request, inherited)  # never returns
            self.children[pid] = conn
            conn.sendall(b"ok" + _CODE.pack(pid))
            return conn
        except Exception:
            try:
                conn.sendall(b"no")
            except OSError:
                pass
            conn.close()
            return None
        finally:
            for fd in fds:
                os.close(fd)

    def _reap(self, poller: select.poll) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            try:
                poller.unregister(conn)
            except (KeyError, ValueError):
                pass
            try:
                conn.sendall(_CODE.pack(os.waitstatus_to_exitcode(status)))
            except OSError:
                pass
            conn.close()
            self.idle_since = time.monotonic()


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# ---- the child: one command, as a fresh process would run it ----------------------------------
def _child(conn: socket.socket, fds: list[int], request: dict, inherited: list[int]) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.close()  # only the server reports to the launcher: a child's crash cannot leave it hanging
        for fd in inherited:  # the listener, other launchers' connections, the wake-up pipe
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environb.update(request["env"])
        time.tzset()  # local times (run start times...) in the command's TZ, not the server's
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        _fresh_stdio()
        sys.argv = list(request["argv"])
        _forget_settings()
        trace = os.environ.get(TRACE_ENV)
        if trace:
            with open(trace, "a") as f:
                f.write(f"{os.getppid()} {os.getpid()}\n")
        code = _run_cli()
    except BaseException:  # a bug of ours: say it where the user looks, as a crash of the command would
        os.write(2, f"mlops-nb: the warm server could not run the command:\n{traceback.format_exc()}".encode())
    finally:
        os._exit(code)


def _fresh_stdio() -> None:
    """Standard streams on the launcher's fds, built as the interpreter builds them at start-up.

    The encoding and error handlers are this interpreter's own: the key the launcher matched
    includes the variables that choose them (PYTHONIOENCODING, PYTHONUTF8, LANG, LC_*).
    """
    # -u / PYTHONUNBUFFERED: the server's own stdout was built write-through then.
    unbuffered = bool(getattr(sys.__stdout__, "write_through", False))
    for fd, name, like in ((0, "stdin", sys.__stdin__), (1, "stdout", sys.__stdout__), (2, "stderr", sys.__stderr__)):
        # io.open sizes the buffer from the fd as start-up does (a pipe's st_blksize): with another
        # size, output would reach a full pipe at another moment than a cold command's does.
        buffered = io.open(fd, "rb" if fd == 0 else "wb", buffering=0 if unbuffered and fd != 0 else -1, closefd=False)
        raw = buffered if isinstance(buffered, io.FileIO) else buffered.raw
        raw.name = f"<{name}>"  # type: ignore[misc]
        stream = io.TextIOWrapper(
            buffered,  # type: ignore[arg-type]
            encoding=like.encoding if like else None,
            errors=like.errors if like else None,
            newline="\n",
            line_buffering=not unbuffered and fd != 0 and (raw.isatty() or fd == 2),
            write_through=unbuffered and fd != 0,
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _forget_settings() -> None:
    """Settings the server's own environment chose when it imported config: the command's decide."""
    from . import config
    from .store import clear_cache

    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # chosen from TMPDIR on first use: the command's TMPDIR decides
    config.reset()
    config._resolved.cache_clear()
    config.metric_regex.cache_clear()
    clear_cache()


def _run_cli() -> int:
    """``mlops_nb.cli.main()`` with the exit status, messages and end a fresh interpreter gives it."""
    from .cli import main as cli_main

    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    except BaseException:  # what the interpreter prints for an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120  # as the interpreter exits when it cannot flush stdout
    return code


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
