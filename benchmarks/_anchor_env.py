"""Separate virtual environments for anchor tools (their pins clash with ours)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def anchor_python(name: str, requirements: list[str]) -> Path:
    """Python of ``build/bench-<name>-venv`` with ``requirements`` installed (created once)."""
    home = ROOT / "build" / f"bench-{name}-venv"
    python = home / "bin" / "python"
    stamp = home / ".requirements.json"
    if not (python.exists() and stamp.exists() and json.loads(stamp.read_text()) == requirements):
        print(f"[bench] creating {home} with {' '.join(requirements)} (first run only)", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        stamp.write_text(json.dumps(requirements))
    return python


def run_json(python: Path, script: str, *args: str) -> dict:
    """Run ``script`` with ``python``; it prints one JSON object as its last line."""
    out = subprocess.run([str(python), "-c", script, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_ours() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
