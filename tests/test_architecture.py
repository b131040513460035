"""The import check CI runs (tools/check_imports.py): the package is clean, and a circle or an upward import fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).resolve().parent.parent / "tools" / "check_imports.py"


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=60)


def test_the_package_has_no_import_circles_and_every_arrow_points_down():
    result = _check()
    assert result.returncode == 0, result.stderr
    assert "no circles" in result.stdout


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "mlops_nb"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_circle_through_a_lazy_import_is_caught(tmp_path):
    package = _package(tmp_path, {
        "registry/__init__.py": "",
        "registry/versions.py": "def register():\n    from .promotion import promote\n",
        "registry/promotion.py": "from .versions import register\n",
    })  # fmt: skip
    result = _check("--root", str(package))
    assert result.returncode == 1
    assert "import circle among mlops_nb.registry.promotion, mlops_nb.registry.versions" in result.stderr
    assert "mlops_nb.registry.versions -> mlops_nb.registry.promotion (line 2)" in result.stderr


def test_a_circle_between_folders_is_caught(tmp_path):
    package = _package(tmp_path, {
        "jobs/__init__.py": "", "jobs/run.py": "from ..registry.pin import pin\n", "jobs/notebook.py": "",
        "registry/__init__.py": "", "registry/pin.py": "", "registry/policy.py": "from mlops_nb.jobs.notebook import h\n",
    })  # fmt: skip
    result = _check("--root", str(package))
    assert result.returncode == 1
    assert "import circle among folders mlops_nb.jobs, mlops_nb.registry" in result.stderr


def test_the_store_importing_the_kernel_side_is_caught_and_type_checking_imports_are_not(tmp_path):
    package = _package(tmp_path, {
        "tracking/__init__.py": "", "tracking/writer.py": "from ..store.engine import x\n",
        "store/__init__.py": "", "store/engine.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..tracking import writer\n"
            "def connect():\n    from ..tracking.writer import wait\n"
        ),
    })  # fmt: skip
    result = _check("--root", str(package))
    assert result.returncode == 1
    assert (
        "mlops_nb.store.engine (line 5) imports mlops_nb.tracking.writer: a store/fingerprint module "
        "must not import a feature module" in result.stderr
    )
    assert "(line 3)" not in result.stderr  # the TYPE_CHECKING import never runs
