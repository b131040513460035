"""The warm CLI server: a read-only `mlops-nb` command served by it prints and exits as a cold one.

Real processes throughout: the installed ``mlops-nb`` entry point, a real registry of tracked runs
in the test's folder, servers in a runtime folder (XDG_RUNTIME_DIR) of the test's own, stopped at
its end.  A child that serves a command appends "<server pid> <child pid>" to the file named by
MLOPS_NB_CLI_TRACE: that is how a test knows which commands a server ran.
"""

from __future__ import annotations

import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import pytest

import mlops_nb
from mlops_nb import config, launcher
from mlops_nb.store import clear_cache
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
MLOPS = str(Path(sys.executable).parent / "mlops-nb")


@pytest.fixture
def runtime():
    """A runtime folder of the test's own (short enough for socket paths); its servers end with the test."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield folder
    for pid in _server_processes(folder):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def _server_processes(folder: Path) -> set[int]:
    """Server processes started for ``folder`` (found by their command line and environment)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"mlops_nb.cli_server" in (entry / "cmdline").read_bytes() and \
                    f"XDG_RUNTIME_DIR={folder}".encode() in (entry / "environ").read_bytes().split(b"\0"):  # fmt: skip
                found.add(int(entry.name))
        except OSError:
            pass
    return found


def _track(home: Path, names: list[str]) -> list[str]:
    """Track one run per name into the registry under ``home``; their ids."""
    saved = os.environ.get("MLOPS_NB_HOME")
    os.environ["MLOPS_NB_HOME"] = str(home)
    config.reset()
    clear_cache()
    ids = []
    try:
        for i, name in enumerate(names):
            with mlops_nb.track(name=name) as run:
                run.log_metric("accuracy", 0.8 + i / 1000)
                run.log_param("C", [0.1, 1, 10][i % 3])
            ids.append(run.id)
    finally:
        if saved is None:
            os.environ.pop("MLOPS_NB_HOME", None)
        else:
            os.environ["MLOPS_NB_HOME"] = saved
        config.reset()
        clear_cache()
    return ids


@pytest.fixture
def registry(mlops_home) -> tuple[Path, list[str]]:
    return mlops_home, _track(mlops_home, ["prep", "train", "eval"])


def _env(runtime: Path, tmp_path: Path, home: Path | None, spare_s: str = "60", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    env.update(XDG_RUNTIME_DIR=str(runtime), MLOPS_NB_SPOOL_DIR=str(tmp_path / "spool"), MLOPS_NB_CLI_SPARE_S=spare_s,
               MLOPS_NB_CLI_TRACE=str(tmp_path / "trace"), COLUMNS="100", **extra)  # fmt: skip
    if home is not None:
        env["MLOPS_NB_HOME"] = str(home)
    return env


def _mlops(args: list[str], env: dict[str, str], cwd: Path, cmd: list[str] | None = None) -> tuple[int, bytes, bytes]:
    done = subprocess.run([*(cmd or [MLOPS]), *args], env=env, cwd=cwd, capture_output=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def _served(tmp_path: Path) -> list[tuple[int, int]]:
    """(server pid, child pid) of each command a server ran so far."""
    trace = tmp_path / "trace"
    return [tuple(map(int, line.split())) for line in trace.read_text().splitlines()] if trace.exists() else []


def _servers(runtime: Path) -> set[int]:
    return {int(s.stem.rpartition("-")[2]) for s in (runtime / f"mlops_nb-cli-{os.getuid()}").glob("*.sock")}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _one_server(runtime: Path) -> int:
    assert wait_for(lambda: len(_servers(runtime)) == 1), "no server started after a read-only command"
    (pid,) = _servers(runtime)
    return pid


def test_warm_commands_print_and_exit_as_cold_ones(registry, runtime, tmp_path):
    home, ids = registry
    warm, cold = _env(runtime, tmp_path, home), _env(runtime, tmp_path, home, spare_s="0")
    assert _mlops(["summary"], warm, tmp_path)[0] == 0  # cold (no server yet); leaves one behind
    server = _one_server(runtime)
    for args in (["runs"], ["summary"], ["show", ids[1][:8]], ["runs", "--params", "--last", "2"], ["status"],
                 ["models", "list"], ["audit", "verify"], ["jobs", "list"], ["lineage", f"run:{ids[0][:8]}"],
                 ["--help"], ["runs", "--help"], ["models", "promote", "--help"], ["--version"], []):  # fmt: skip
        expected = _mlops(args, cold, tmp_path)
        before = len(_served(tmp_path))
        assert _mlops(args, warm, tmp_path) == expected, args
        assert [s for s, _ in _served(tmp_path)[before:]] == [server], f"{args} was not served by the server"
    assert b"train" in _mlops(["runs"], warm, tmp_path)[1]
    # What the interpreter reads from the environment once (the time zone, the temp folder): the command's.
    for extra in ({"TZ": "Asia/Tokyo"}, {"TZ": "America/New_York", "COLUMNS": "60", "TMPDIR": str(tmp_path)}):
        for args in (["runs"], ["show", ids[0][:8]], ["--help"]):
            assert _mlops(args, {**warm, **extra}, tmp_path) == _mlops(args, {**cold, **extra}, tmp_path), (args, extra)
    assert len(_served(tmp_path)) == 14 + 1 + 6


def test_errors_are_the_same_warm_and_cold(registry, runtime, tmp_path):
    home, _ = registry
    warm, cold = _env(runtime, tmp_path, home), _env(runtime, tmp_path, home, spare_s="0")
    _mlops(["summary"], warm, tmp_path)
    server = _one_server(runtime)
    missing = tmp_path / "nowhere" / "registry.db"
    cases = [
        (["show", "ffffffff"], {}),
        (["show", "not-hex"], {}),
        (["--store", f"sqlite:///{missing}", "summary"], {}),
        (["runs"], {"MLOPS_NB_STORE_URL": "not a url"}),
        (["summary"], {"MLOPS_NB_HOME": str(tmp_path / "empty")}),
        (["runs", "--last", "0"], {}),  # click's own usage error: exit 2
        (["models", "versions"], {}),
    ]
    for args, extra in cases:
        expected = _mlops(args, {**cold, **extra}, tmp_path)
        assert expected[0] != 0 and expected[2], (args, expected)
        before = len(_served(tmp_path))
        assert _mlops(args, {**warm, **extra}, tmp_path) == expected, args
        assert [s for s, _ in _served(tmp_path)[before:]] == [server], args
    assert not (tmp_path / "empty").exists()  # a read-only command created no registry, warm either


def test_each_command_uses_its_own_folder_and_environment(registry, runtime, tmp_path):
    home, _ = registry
    other = tmp_path / "project" / ".mlops"
    _track(other, ["elsewhere"])
    _mlops(["summary"], _env(runtime, tmp_path, home), tmp_path)
    server = _one_server(runtime)

    def listed(env_home: Path | None, cwd: Path) -> bytes:
        code, out, err = _mlops(["runs"], _env(runtime, tmp_path, env_home), cwd)
        assert code == 0, err
        return out

    assert b"prep" in listed(home, tmp_path) and b"elsewhere" not in listed(home, tmp_path)
    assert b"elsewhere" in listed(other, tmp_path) and b"prep" not in listed(other, tmp_path)
    assert b"elsewhere" in listed(None, other.parent)  # ./.mlops of the command's own folder
    assert b"prep" in listed(home, tmp_path)  # and back: nothing of the last command stayed
    assert {s for s, _ in _served(tmp_path)} == {server} and len(_served(tmp_path)) == 6


def test_write_commands_never_go_to_the_server(registry, runtime, tmp_path):
    home, _ = registry
    env = _env(runtime, tmp_path, home)
    code, _, err = _mlops(["models", "promote", "nothing@prod"], env, tmp_path)  # a write, cold; leaves no server
    assert code != 0 and err
    time.sleep(1.5)
    assert not _servers(runtime) and not _server_processes(runtime)
    _mlops(["summary"], env, tmp_path)
    _one_server(runtime)
    _mlops(["models", "promote", "nothing@prod"], env, tmp_path)
    _mlops(["--store", str(home / "registry.db"), "models", "rollback", "nothing"], env, tmp_path)
    assert _served(tmp_path) == []
    for args in (["run", "nb.ipynb"], ["sync"], ["models", "register", "x"], ["audit", "export"], ["data", "export", "x", "y"],
                 ["--project", "runs", "sync"], ["gc"], ["models", "promote", "x@y"]):  # fmt: skip
        assert not launcher.read_only(args), args
    for args in (["runs"], ["--store", "x.db", "summary"], ["--store=x.db", "show", "abc"], ["models"], ["models", "list"],
                 ["audit", "verify", "--head", "1:x"], ["data", "show", "abc"], ["run", "--help"], ["--version"], []):  # fmt: skip
        assert launcher.read_only(args), args


def test_a_server_whose_code_changed_declines_and_exits(registry, runtime, tmp_path):
    """A module file the server loaded changes (an upgrade, an edit): the command runs cold, a new server follows."""
    home, _ = registry
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "mlops_nb", package / "mlops_nb", ignore=shutil.ignore_patterns("__pycache__", "labextension"))
    env = _env(runtime, tmp_path, home, PYTHONPATH=str(package))
    cmd = [sys.executable, "-m", "mlops_nb.launcher"]
    expected = _mlops(["runs"], env, tmp_path, cmd)
    assert expected[0] == 0 and b"train" in expected[1]
    first = _one_server(runtime)
    assert _mlops(["runs"], env, tmp_path, cmd) == expected and [s for s, _ in _served(tmp_path)] == [first]

    commands = package / "mlops_nb" / "search" / "commands.py"
    commands.write_text(commands.read_text() + "\n")
    assert _mlops(["runs"], env, tmp_path, cmd) == expected
    assert [s for s, _ in _served(tmp_path)] == [first]  # run cold
    assert wait_for(lambda: not _alive(first)), "the declining server did not exit"
    second = _one_server(runtime)
    assert second != first
    assert _mlops(["runs"], env, tmp_path, cmd) == expected and _served(tmp_path)[-1][0] == second


def _interrupted(env: dict[str, str], cwd: Path, tmp_path: Path, signum: int) -> tuple[int, bytes, int]:
    """Run `mlops-nb runs` into a pipe no one reads until it blocks, signal it, then read the pipe.

    The pipe is cut to one page, so the listing fills it while the command prints: the command
    blocks in write(), where a signal interrupts it as it would interrupt a user's command.
    """
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    before = len(_served(tmp_path))
    proc = subprocess.Popen([MLOPS, "runs"], env=env, cwd=cwd, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)

    def pipe_full() -> bool:
        return int.from_bytes(fcntl.ioctl(read_end, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder) >= 4096

    try:
        wait_for(lambda: pipe_full() or proc.poll() is not None)
        assert pipe_full(), f"the command did not fill the pipe: exit {proc.poll()}, {proc.stderr.read() if proc.poll() is not None else ''}"
        time.sleep(0.3)  # blocked in write() by now
        served = _served(tmp_path)[before:]
        proc.send_signal(signum)
        # Reading the pipe lets the command go on: first let the signal reach it (a warm command
        # gets it from the launcher a moment later), i.e. until it says so or is gone.
        child = served[0][1] if served else proc.pid
        wait_for(lambda: select.select([proc.stderr], [], [], 0)[0] or not _alive(child), timeout=5)
        with os.fdopen(read_end, "rb") as out:
            out.read()
        err = proc.stderr.read()
        code = proc.wait(timeout=30)
    finally:
        proc.kill()
    child = served[0][1] if served else 0
    return code, err, child


def test_a_signal_to_the_launcher_reaches_the_command(mlops_home, runtime, tmp_path):
    names = [f"a-run-with-a-rather-long-name-to-fill-the-pipe-{i:03d}" for i in range(70)]
    _track(mlops_home, names)
    warm, cold = _env(runtime, tmp_path, mlops_home), _env(runtime, tmp_path, mlops_home, spare_s="0")
    code, out, _ = _mlops(["runs"], warm, tmp_path)
    assert code == 0 and len(out) > 6000, "the listing must be longer than the pipe"
    _one_server(runtime)

    cold_code, cold_err, _ = _interrupted(cold, tmp_path, tmp_path, signal.SIGINT)
    assert cold_code == 1 and cold_err.endswith(b"Aborted!\n"), cold_err  # click's answer to Ctrl-C
    warm_code, warm_err, child = _interrupted(warm, tmp_path, tmp_path, signal.SIGINT)
    assert child and (warm_code, warm_err) == (cold_code, cold_err), (child, warm_code, warm_err, _served(tmp_path), _servers(runtime))
    assert not _alive(child)

    # A signal the command does not handle ends it; the launcher reports it as a shell would (128 + N).
    cold_code, _, _ = _interrupted(cold, tmp_path, tmp_path, signal.SIGTERM)
    warm_code, _, child = _interrupted(warm, tmp_path, tmp_path, signal.SIGTERM)
    assert cold_code == -signal.SIGTERM and warm_code == 128 + signal.SIGTERM and child and not _alive(child)


def test_a_server_exits_when_no_command_comes(registry, runtime, tmp_path):
    home, _ = registry
    env = _env(runtime, tmp_path, home, spare_s="2")
    _mlops(["summary"], env, tmp_path)
    server = _one_server(runtime)
    time.sleep(1.2)
    assert _mlops(["runs"], env, tmp_path)[0] == 0 and _served(tmp_path)[-1][0] == server
    time.sleep(1.2)  # 2.4 s after start, 1.2 s after its last command: still there
    assert _alive(server)
    assert wait_for(lambda: not _alive(server), timeout=10), "the idle server did not exit"
    assert not _servers(runtime)


def test_without_spare_seconds_no_server_starts(registry, runtime, tmp_path):
    home, _ = registry
    env = _env(runtime, tmp_path, home, spare_s="0")
    for args in (["summary"], ["runs"]):
        assert _mlops(args, env, tmp_path)[0] == 0
    time.sleep(1.5)
    assert not _servers(runtime) and not _server_processes(runtime) and _served(tmp_path) == []


def test_the_launcher_imports_neither_click_nor_sqlalchemy():
    """Every `mlops-nb` command imports the launcher first: a warm command must not pay for the CLI's imports."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mlops_nb.launcher"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert done.returncode == 0 and "mlops_nb.launcher" in imported
    assert not {"click", "sqlalchemy", "mlops_nb.cli", "pickle", "subprocess", "tempfile"} & imported


def test_the_server_preloads_neither_pandas_nor_the_notebook_stack():
    """What the warm server imports before its first command stays small (pandas alone doubled its memory)."""
    probe = (
        "import importlib, sys\nfrom mlops_nb.cli_server import PRELOAD\n"
        "for name in PRELOAD: importlib.import_module(name)\n"
        "print(sorted({'pandas', 'numpy', 'sklearn'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_killed_launcher_ends_its_command_and_a_stopped_server_ends(mlops_home, runtime, tmp_path):
    """The launcher dies (kill -9): its command must not run on unseen.  SIGTERM stops a server cleanly."""
    _track(mlops_home, [f"a-run-with-a-rather-long-name-to-fill-the-pipe-{i:03d}" for i in range(70)])
    env = _env(runtime, tmp_path, mlops_home)
    _mlops(["runs"], env, tmp_path)
    server = _one_server(runtime)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([MLOPS, "runs"], env=env, cwd=tmp_path, stdout=write_end, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        assert wait_for(lambda: len(_served(tmp_path)) == 1), "the command was not served"
        child = _served(tmp_path)[0][1]
        time.sleep(0.5)  # blocked in write() on the full pipe by now
        assert _alive(child)
        proc.kill()
        proc.wait(timeout=30)
        assert wait_for(lambda: not _alive(child), timeout=10), "the command outlived its launcher"
    finally:
        os.close(read_end)
    assert _alive(server)
    os.kill(server, signal.SIGTERM)
    assert wait_for(lambda: not _alive(server), timeout=10) and not _servers(runtime)


def test_a_terminal_is_the_commands_own(registry, runtime, tmp_path):
    """On a terminal (a pty 52 columns wide, no COLUMNS) the help wraps to the terminal's width, warm as cold."""
    import pty
    import struct

    home, _ = registry
    env = {k: v for k, v in _env(runtime, tmp_path, home).items() if k not in ("COLUMNS", "LINES")}
    _mlops(["summary"], env, tmp_path)
    server = _one_server(runtime)

    def on_terminal(spare_s: str) -> tuple[int, bytes]:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 52, 0, 0))
        proc = subprocess.Popen([MLOPS, "runs", "--help"], env={**env, "MLOPS_NB_CLI_SPARE_S": spare_s}, cwd=tmp_path,
                                stdin=follower, stdout=follower, stderr=follower)  # fmt: skip
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: every holder of the terminal's other side has closed it
                break
            if not chunk:
                break
            out += chunk
        os.close(leader)
        return proc.wait(timeout=60), out

    before = len(_served(tmp_path))
    cold = on_terminal("0")
    assert cold[0] == 0 and max(len(line) for line in cold[1].splitlines()) <= 52, cold
    assert on_terminal("60") == cold
    assert [s for s, _ in _served(tmp_path)[before:]] == [server]
