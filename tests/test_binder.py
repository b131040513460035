"""binder/ installs into a fresh virtualenv as mybinder does, and the example notebooks run there.

The environment is built once under ``build/binder/`` (``pip install -r
binder/requirements.txt``, then ``binder/postBuild`` from a copy of the
repository) and reused while binder/ and pyproject.toml are unchanged; the
copy's sources are refreshed on every run (the install is editable), so the
notebooks always run against the current code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "binder"
REPO = BUILD / "repo"
VENV = BUILD / "venv"
STAMP = BUILD / "stamp"
NOTEBOOKS = ("quickstart", "drift_monitoring", "scheduled_retraining", "data_versions")

pytestmark = [pytest.mark.binder, pytest.mark.timeout(3600)]


def _key() -> str:
    h = hashlib.sha256()
    for name in ("binder/requirements.txt", "binder/postBuild", "pyproject.toml"):
        h.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def _sync_repo() -> None:
    """Copy the repository's tracked files (as they are in the working tree) into build/binder/repo."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src, dst = ROOT / name, REPO / name
        if not src.is_file():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    # The sidebar's npm build is tested elsewhere (and needs the npm registry); the Python side is what runs here.
    env["SKIP_JUPYTER_BUILDER"] = "1"
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


@pytest.fixture(scope="module")
def binder_env() -> dict[str, str]:
    key = _key()
    if not (STAMP.exists() and STAMP.read_text() == key and (VENV / "bin" / "python").exists()):
        shutil.rmtree(BUILD, ignore_errors=True)
        BUILD.mkdir(parents=True)
        _sync_repo()
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(VENV)], BUILD, dict(os.environ))
        env = _env()
        _run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], REPO, env)
        _run(["bash", "binder/postBuild"], REPO, env)  # as repo2docker: from the repository root
        STAMP.write_text(key)
    _sync_repo()
    return _env()


def test_postbuild_populated_the_demo_registry(binder_env):
    assert (REPO / "notebooks" / ".mlops" / "registry.db").exists()
    out = subprocess.run([str(VENV / "bin" / "mlops-nb"), "summary"], cwd=REPO / "notebooks", env=binder_env,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0 and "train-logreg" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_example_notebook_runs_in_the_binder_environment(binder_env, tmp_path, name):
    out = tmp_path / f"{name}.out.ipynb"
    env = {**binder_env, "MLOPS_NB_HOME": str(tmp_path / ".mlops")}
    _run([str(VENV / "bin" / "papermill"), str(REPO / "notebooks" / f"{name}.ipynb"), str(out),
          "--cwd", str(tmp_path), "-k", "python3", "--no-progress-bar"], tmp_path, env)  # fmt: skip
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert (tmp_path / ".mlops" / "registry.db").exists()
    # the kernel ran on the binder environment's interpreter, with mlops_nb from the repository copy
    check = subprocess.run([str(VENV / "bin" / "python"), "-c", "import mlops_nb, sys; print(mlops_nb.__file__, sys.prefix)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert str(REPO / "mlops_nb") in check.stdout and str(VENV) in check.stdout
