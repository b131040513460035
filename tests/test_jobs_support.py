"""Tiny notebooks and helpers shared by the notebook-job tests (no tests here).

The per-test registry comes from conftest.py (``mlops_home`` / ``store``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
MLOPS_NB = ROOT / ".venv" / "bin" / "mlops-nb"
_ENV = ("MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_PROJECT", "MLOPS_NB_JOB_RUN_ID",
        "MLOPS_NB_BATCH_ID", "MLOPS_NB_NOTEBOOK", "MLOPS_NB_HOME")  # fmt: skip


def write_notebook(path: Path, *cells: str, parameters: str | None = "x = 1", kernel: str | None = "python3",
                   counts: list[int | None] | None = None) -> Path:  # fmt: skip
    """A notebook of code cells, the first one tagged ``parameters`` unless ``parameters`` is None."""
    nb_cells = [new_markdown_cell("A test notebook.")]
    if parameters is not None:
        nb_cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb_cells += [new_code_cell(source) for source in cells]
    for cell, count in zip([c for c in nb_cells if c.cell_type == "code"], counts or [], strict=False):
        cell.execution_count = count
    metadata = {"language_info": {"name": "python"}}
    if kernel:
        metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=nb_cells, metadata=metadata), path)
    return path


TRACKED = "%load_ext mlops_nb"


def child_env(home: Path) -> dict[str, str]:
    """Environment for a CLI subprocess recording into ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env["MLOPS_NB_HOME"] = str(home)
    return env
