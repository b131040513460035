"""Run notebook cells in a real kernel the way JupyterLab sends them: with cell ids.

nbclient's own requests carry no metadata; JupyterLab puts ``cellId`` (and
``deletedCells``) in each execute request's metadata, which ipykernel hands to
IPython as ``info.cell_id`` / ``info.cell_meta``.  :class:`CellIdClient` does
the same, and can run cells in any order (as a user clicking around would).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The summary line (and its warning lines) a tracked cell adds; object addresses differ per process.
SUMMARY = re.compile(r"^mlops run [0-9a-f]{8}.*\n(?:  .*\n)*", re.MULTILINE)
ADDRESS = re.compile(r"0x[0-9a-f]+")


class CellIdClient(NotebookClient):
    """A NotebookClient whose execute requests carry the cell id, as JupyterLab's do."""

    def __init__(self, nb, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.current_cell_id: str | None = None
        self.deleted_cells: list[str] = []

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()

        def execute(code, silent=False, store_history=True, user_expressions=None, allow_stdin=None, stop_on_error=True):
            content = {
                "code": code, "silent": silent, "store_history": store_history,
                "user_expressions": user_expressions or {}, "allow_stdin": False, "stop_on_error": stop_on_error,
            }  # fmt: skip
            metadata = {"cellId": self.current_cell_id, "deletedCells": list(self.deleted_cells)}
            msg = kc.session.msg("execute_request", content, metadata=metadata)
            kc.shell_channel.send(msg)
            return msg["header"]["msg_id"]

        kc.execute = execute
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # the base binds its own

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self.current_cell_id = cell.get("id")
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    execute_cell = run_sync(async_execute_cell)



def run_notebook(nb: nbformat.NotebookNode, *, env: dict[str, str], cwd: Path, order: Iterable[int] | None = None):
    """Execute ``nb``'s code cells (all, top to bottom, or the indexes in ``order``) in one kernel.

    Returns the list of executed cells in execution order (the same objects as in ``nb``).
    """
    client = CellIdClient(nb, timeout=300, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(cwd)}})
    done = []
    with client.setup_kernel(env=env, cwd=str(cwd)):
        indexes = list(order) if order is not None else [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        for index in indexes:
            client.execute_cell(nb.cells[index], index)
            done.append(nb.cells[index])
        flush(client)
    return done


@contextmanager
def kernel_session(nb: nbformat.NotebookNode, *, env: dict[str, str], cwd: Path) -> Iterator[CellIdClient]:
    """One kernel for ``nb``; ``client.execute_cell(cell, index)`` runs any cell, in any order."""
    client = CellIdClient(nb, timeout=300, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(cwd)}})
    with client.setup_kernel(env=env, cwd=str(cwd)):
        yield client


def flush(client) -> None:
    """Wait in the kernel until its runs are in the store (the next read here sees them), uncounted."""
    run_aside(client, "import mlops_nb; mlops_nb.sync()")


def run_aside(client, source: str) -> None:
    """Execute ``source`` in the client's kernel silently: no cell events, history, count or outputs.

    Silent, so that autotrack and the stale-input ledger never see it and
    nothing it makes the kernel do (imports, event work) moves out of the
    notebook's own cells.
    """
    msg_id = client.kc.execute(source, silent=True, store_history=False)
    reply = client.wait_for_reply(msg_id)
    if reply is None or reply["content"]["status"] != "ok":
        content = (reply or {}).get("content", {})
        raise RuntimeError(f"{source!r} failed in the kernel: {content.get('ename')}: {content.get('evalue')}")


def output_text(cell) -> str:
    """Everything a cell showed, as one plain string (ANSI colours removed)."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]))
        else:
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return ANSI.sub("", "".join(parts))


def comparable_outputs(cell) -> list[tuple]:
    """The cell's outputs without the summary line, consecutive streams merged, addresses masked."""
    found: list[tuple] = []
    for out in cell.get("outputs", []):
        kind = out["output_type"]
        if kind == "stream":
            text = SUMMARY.sub("", out["text"])
            if found and found[-1][0] == "stream" and found[-1][1] == out["name"]:
                found[-1] = ("stream", out["name"], found[-1][2] + text)
            else:
                found.append(("stream", out["name"], text))
        elif kind == "error":
            found.append(("error", out["ename"], out["evalue"], ANSI.sub("", "\n".join(out["traceback"]))))
        else:
            data = {k: ADDRESS.sub("0x…", v) if isinstance(v, str) else v for k, v in out.get("data", {}).items()}
            found.append((kind, data, out.get("execution_count")))
    return [o for o in found if not (o[0] == "stream" and not o[2])]
