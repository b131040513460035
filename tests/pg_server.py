"""A throwaway PostgreSQL server on 127.0.0.1 for the store tests.

Uses Debian's PostgreSQL binaries (``.ci/run`` installs them when missing).
initdb refuses to run as root, so as root the server runs as the ``postgres``
system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("PostgreSQL binaries not found: apt-get install -y postgresql")
        self.dir = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        if self.user:
            shutil.chown(self.dir, self.user)
        data = self.dir / "data"
        self._run(self.initdb, "-D", str(data), "-U", "mlops", "--auth=trust", "-E", "UTF8")
        self._run(
            self.pg_ctl, "-D", str(data), "-l", str(self.dir / "log.txt"), "-w", "-t", "60",
            "-o", f"-p {self.port} -h 127.0.0.1 -k {self.dir}", "start",
        )  # fmt: skip
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.2)
        return f"postgresql+psycopg://mlops@127.0.0.1:{self.port}/postgres"

    def pause(self) -> None:
        """Stop the server the way a restart or failover does (``-m fast``: sessions are cut), keeping its data."""
        self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def crash(self) -> None:
        """Kill the server as a power cut would (``-m immediate``: no checkpoint, open transactions cut off)."""
        self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        """Start a paused server again on the same port and data."""
        self._run(
            self.pg_ctl, "-D", str(self.dir / "data"), "-l", str(self.dir / "log.txt"), "-w", "-t", "60",
            "-o", f"-p {self.port} -h 127.0.0.1 -k {self.dir}", "start",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self._run(self.pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass  # already stopped (a test paused it and failed before resuming)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
