"""Run a notebook as a recorded job: papermill in a child process, never in this one.

papermill drives its kernel with an asyncio loop; inside a running Jupyter
kernel that fails with "This event loop is already running" (papermill#490),
and a crash or a hung kernel would take the caller down with it.  So every
execution is ``python -m papermill`` in its own session: the wall-clock
timeout kills that process group *and* the kernel (which jupyter_client starts
in a session of its own), and nothing papermill does touches the caller.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import yaml

from .. import config
from ..environment import current_user, environment
from ..errors import JobError, NotebookChanged
from ..processes import PARENT_ENV
from ..tracking.recorder import LOCK_ENV, wait_for_recorders
from .job_runs import JobRun, job_run_from_record
from .notebook import (
    PAPERMILL_TAGS,
    kernel_name,
    load_notebook,
    notebook_file,
    notebook_hash,
    original_index,
)

if TYPE_CHECKING:
    from ..store.sql import SqlStore

log = logging.getLogger("mlops_nb.jobs")

#: Called with ``{"job_run_id", "cell", "total", "state"}`` as papermill starts
#: (``state="start"``) and ends (``"end"``) each cell; cells count from 1.
ProgressCallback = Callable[[dict[str, Any]], None]

_CELL_EVENT = re.compile(r"(Executing|Ending) Cell (\d+)-")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_LOG_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): ?(.*)$")
_TAIL_LINES = 60
_KERNEL_START_TRIES = 3
_KERNEL_START_FAILURES = ("Kernel died before replying to kernel_info", "Kernel didn't respond", "Address already in use")




def run_notebook(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    kernel: str | None = None,
    output: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    store: SqlStore | None = None,
    batch_id: str | None = None,
    schedule_name: str | None = None,
    firing_id: int | None = None,
    attempt: int | None = None,
    env: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    job_run_id: str | None = None,
    expected_hash: str | None = None,
) -> JobRun:
    """Execute ``notebook`` with papermill in a child process and record it as a job run.

    Parameters
    ----------
    notebook : path
        The ``.ipynb`` file.
    parameters : mapping, optional
        Values injected after the ``parameters`` cell (YAML-serialisable).
    timeout : float, optional
        Wall-clock limit in seconds for the whole notebook; the kernel and
        papermill are killed when it passes (status ``timeout``).
    cell_timeout : float, optional
        papermill's per-cell execution timeout.
    kernel : str, optional
        Kernel name; default the notebook's kernelspec, else ``python3``.
    output : str, optional
        Also write the executed notebook here (local path, folder or fsspec URL).
        It always goes to the artifact store.
    cwd : path, optional
        Working directory of the kernel; default the notebook's folder.
    store : SqlStore, optional
        Registry to record into (and that the kernel's tracked cells write to).
    batch_id, schedule_name, firing_id, attempt : optional
        Grouping recorded on the job run (batch id also reaches the kernel).
    env : mapping, optional
        Extra environment variables for papermill and the kernel.
    progress : callable, optional
        Called as each cell starts and ends (see :data:`ProgressCallback`).
    expected_hash : str, optional
        Refuse (:class:`~mlops_nb.errors.NotebookChanged`) unless the notebook
        still has this content hash; checked before anything runs.

    Returns
    -------
    JobRun
        Never raises for a failing notebook: check ``.ok`` or call
        ``.raise_for_status()``.
    """
    from ..registry.versions import pin_references
    from ..tracking.spool import deliver

    file = notebook_file(notebook)
    nb = load_notebook(file)
    params = dict(parameters or {})
    kernel = kernel or kernel_name(nb) or "python3"
    store, urls = _open_store(store)
    job_id = job_run_id or uuid.uuid4().hex
    nb_hash = notebook_hash(nb)
    if expected_hash is not None and nb_hash != expected_hash:
        raise NotebookChanged(
            f"{file} changed since it was scheduled (hash {nb_hash[:12]}, validated and scheduled "
            f"{expected_hash[:12]}): validate it again and re-add the schedule.",
            path=str(file), expected=expected_hash, actual=nb_hash,
        )  # fmt: skip
    # With the registry down no alias can be pinned: the notebook resolves it when it runs.
    params, pinned = pin_references(params, store) if store is not None else (params, {})
    params_yaml = _parameters_yaml(params)  # bad values are refused before anything is recorded
    start = time.time()
    what = f"job run {job_id[:8]}"
    # Through the spool: with the registry down the notebook still runs, and its job run waits
    # on disk ahead of the runs its kernel tracks (their job_run_id points at it).
    _, queued = deliver(
        {"op": "job_start", **urls, "run_id": job_id, "fields": dict(
            notebook_path=str(file), notebook_hash=nb_hash, parameters=params, kernel=kernel,
            environment=dict(environment(), cwd=str(cwd or file.parent), **({"models": pinned} if pinned else {})),
            start_time=start, batch_id=batch_id, schedule_name=schedule_name, firing_id=firing_id,
            attempt=attempt, user=current_user(), host=socket.gethostname())},
        store=store, what=what,
    )  # fmt: skip
    if queued:
        log.warning("job run %s: registry unreachable (%s); the notebook runs and its record waits in the "
                    "local spool", job_id[:8], queued)  # fmt: skip
    log.info("job run %s started: %s %s", job_id[:8], file, params or "")
    workdir = Path(tempfile.mkdtemp(prefix="mlops-nb-job-"))
    out_path = workdir / f"{file.stem}-{job_id[:8]}.ipynb"
    status, error, failed = "failed", None, None
    try:
        child_env = _child_env(urls, job_id, file, batch_id, env)
        child_env[LOCK_ENV] = str(workdir / "recorder.lock")  # so that we can wait for the kernel's writes
        child_env[PARENT_ENV] = str(os.getpid())  # papermill dies with us: a killed runner leaves no notebook running
        command = _papermill_command(file, out_path, workdir, params_yaml, kernel, cell_timeout, cwd or file.parent)
        total = len(nb.cells) + (1 if params else 0)
        try:
            for tries_left in range(_KERNEL_START_TRIES - 1, -1, -1):
                returncode, tail, last_cell = _supervise(command, child_env, timeout, job_id, total, progress)
                if returncode in (0, None) or not tries_left or not _kernel_never_started(tail):
                    break
                # Kernels started at the same moment can race for a TCP port (jupyter_client
                # picks free ports without reserving them); no cell ran, so a retry is safe.
                log.warning("job run %s: the kernel died while starting; starting it again", job_id[:8])
                time.sleep(0.5 + random.random())
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user (KeyboardInterrupt)"
            raise
        except Exception as exc:  # e.g. the interpreter cannot be started
            error = f"papermill could not be started: {exc}"
            raise
        if returncode is None:
            status, error = "timeout", f"the notebook ran longer than {timeout:g} s; papermill and its kernel were killed"
        elif returncode == 0:
            status = "finished"
        else:
            executed = nbformat.read(str(out_path), as_version=4) if out_path.exists() else None
            failed = failing_cell(executed) if executed is not None else None
            if failed and cell_timeout and any("CellTimeoutError" in line for line in tail):
                # nbclient interrupts the kernel: the cell shows a bare KeyboardInterrupt.
                failed.update(ename="CellTimeoutError", evalue=f"the cell ran longer than {cell_timeout:g} s")
            elif executed is not None and (failed is None or failed["evalue"] is None):
                failed = _unraised_failure(executed, failed, last_cell, tail)
            error = _error_text(failed, tail)
    finally:
        if not wait_for_recorders(workdir / "recorder.lock"):
            log.warning("job run %s: the kernel's recorder is still writing runs", job_id[:8])
        executed_bytes = out_path.read_bytes() if out_path.exists() else None
        url = _copy_output(out_path, output, file, job_id)
        shutil.rmtree(workdir, ignore_errors=True)
        end = time.time()
        outcome = dict(status=status, end_time=end, duration=end - start, output_url=url, error=error, failed_cell=failed)
        _, queued = deliver(
            {"op": "job_finish", **urls, "run_id": job_id, "output": executed_bytes, "fields": outcome},
            store=store, what=what,
        )  # fmt: skip
        if queued:
            log.warning("job run %s %s; queued (registry unreachable: %s): written when it answers "
                        "(mlops-nb status)", job_id[:8], status, queued)  # fmt: skip
        else:
            log.info("job run %s %s after %.1f s", job_id[:8], status, end - start)
    record = store.get_job_run(job_id) if store is not None and not queued else {}
    return JobRun(
        id=job_id, notebook_path=str(file), notebook_hash=nb_hash, parameters=params, kernel=kernel,
        status=status, start_time=start, end_time=end, duration=end - start,
        output_digest=record.get("output_digest") or (_digest(executed_bytes) if executed_bytes else None),
        output_url=url, error=error, failed_cell=failed, run_ids=record.get("run_ids") or [], batch_id=batch_id,
        schedule_name=schedule_name, firing_id=firing_id, attempt=attempt, queued=queued,
    )  # fmt: skip




# ---- the child process --------------------------------------------------------------
def _child_env(
    urls: Mapping[str, str], job_id: str, file: Path, batch_id: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel must record into the same registry, and label its runs with this job.
    env.update(
        MLOPS_NB_STORE_URL=urls["store"],
        MLOPS_NB_ARTIFACTS_URL=urls["artifacts"],
        MLOPS_NB_JOB_RUN_ID=job_id,
        MLOPS_NB_NOTEBOOK=str(file),
        PYTHONUNBUFFERED="1",
    )
    env.pop("MLOPS_NB_BATCH_ID", None)
    if batch_id:
        env["MLOPS_NB_BATCH_ID"] = batch_id
    if config.settings.project:  # an explicit MLOPS_NB_PROJECT in ``extra`` still wins below
        env["MLOPS_NB_PROJECT"] = config.settings.project
    env.update(extra or {})
    return env


def _parameters_yaml(params: Mapping[str, Any]) -> str:
    # A YAML file rather than -p: papermill's -p guesses types, and a float like
    # 1e-5 inside a -y JSON string is read back by PyYAML as a string.
    try:
        return yaml.safe_dump(dict(params))
    except yaml.YAMLError as exc:
        raise JobError(f"Parameters must be plain values (numbers, strings, booleans, lists, dicts): {exc}") from None


def _papermill_command(
    file: Path, out: Path, workdir: Path, params_yaml: str, kernel: str,
    cell_timeout: float | None, cwd: str | os.PathLike[str],
) -> list[str]:  # fmt: skip
    params_file = workdir / "parameters.yaml"
    params_file.write_text(params_yaml, encoding="utf-8")
    command = [
        # papermill's own CLI, minus a 1 s import that validates nothing in a notebook (see lean_imports)
        sys.executable, "-c", "from mlops_nb.lean_imports import papermill_main; papermill_main()",
        str(file), str(out), "-f", str(params_file), "-k", kernel,
        "--cwd", str(cwd), "--log-output", "--log-level", "INFO", "--no-progress-bar",
        "--request-save-on-cell-execute",
    ]  # fmt: skip
    if cell_timeout:
        command += ["--execution-timeout", str(max(1, round(cell_timeout)))]
    return command


def _supervise(
    command: list[str], env: dict[str, str], timeout: float | None, job_id: str, total: int,
    progress: ProgressCallback | None,
) -> tuple[int | None, list[str], int | None]:  # fmt: skip
    """Run papermill; its exit status (None after a timeout kill), the tail of its log and the
    number (1-based, in the executed notebook) of the last cell it started."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, text=True, errors="replace", start_new_session=True,
    )  # fmt: skip
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    started: list[int] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            match = _CELL_EVENT.search(line)
            if match and match.group(1) == "Executing":
                started.append(int(match.group(2)))
            if match and progress is not None:
                state = "start" if match.group(1) == "Executing" else "end"
                try:
                    progress({"job_run_id": job_id, "cell": int(match.group(2)), "total": total, "state": state})
                except Exception:  # a broken display must not break the job
                    log.exception("progress callback failed")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        returncode: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process_tree(proc)
        returncode = None
    except BaseException:
        kill_process_tree(proc)
        raise
    reader.join(timeout=5)
    return returncode, list(tail), started[-1] if started else None


def _kernel_never_started(tail: list[str]) -> bool:
    """Whether papermill failed because its kernel died during start-up, before any cell ran."""
    started_cells = any(_CELL_EVENT.search(line) for line in tail)
    return not started_cells and any(marker in line for line in tail for marker in _KERNEL_START_FAILURES)


def kill_process_tree(proc: subprocess.Popen) -> None:
    """SIGKILL papermill's process group and every descendant's group (the kernel's own session)."""
    groups = {proc.pid}
    try:
        import psutil

        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                groups.add(os.getpgid(child.pid))
                child.kill()
            except (psutil.Error, ProcessLookupError):
                continue
    except Exception:  # psutil missing or papermill already gone: its group is still killed
        pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
    proc.wait()


# ---- what happened ------------------------------------------------------------------
def failing_cell(executed: str | os.PathLike[str] | nbformat.NotebookNode) -> dict[str, Any] | None:
    """The cell that raised in a notebook executed by papermill, or None.

    Returns ``index`` (in the source notebook), ``execution_count``, ``lineno``
    and ``line`` (the source line that raised), ``ename``, ``evalue`` (None if
    papermill flagged the cell but it holds no error output).
    """
    nb = executed if isinstance(executed, nbformat.NotebookNode) else nbformat.read(str(executed), as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or PAPERMILL_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        meta = cell.get("metadata", {}).get("papermill", {})
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors and not meta.get("exception"):
            continue
        return _cell_failure(nb, i, errors[0] if errors else _printed_error(cell))
    return None


def _cell_failure(nb: nbformat.NotebookNode, index: int, error: Mapping[str, Any]) -> dict[str, Any]:
    """The failure record of cell ``index`` of the executed notebook, from its error output (or ``{}``)."""
    cell = nb.cells[index]
    lineno, line = _raising_line(error.get("traceback", []), cell.get("execution_count"))
    return {
        "index": original_index(nb, index),
        "execution_count": cell.get("execution_count"),
        "lineno": lineno,
        "line": line,
        "ename": error.get("ename", "Error"),
        "evalue": error.get("evalue"),  # None: no error output (see _unraised_failure)
        "source": cell.source[:2000],
    }


def _printed_error(cell: nbformat.NotebookNode) -> dict[str, str]:
    """``{ename, evalue}`` of an error IPython printed instead of raising (a magic's UsageError)."""
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
    found = re.findall(r"^(UsageError): (.+)$", _ANSI.sub("", text), flags=re.MULTILINE)
    return {"ename": found[-1][0], "evalue": found[-1][1]} if found else {}


def _raising_line(traceback: list[str], execution_count: int | None) -> tuple[int | None, str | None]:
    """(line number, code) of the innermost frame in the cell itself."""
    lines = _ANSI.sub("", "\n".join(traceback)).splitlines()
    found: tuple[int | None, str | None] = (None, None)
    in_cell = False
    for text in lines:
        if text.startswith("Cell In["):
            in_cell = execution_count is None or text.startswith(f"Cell In[{execution_count}]")
        elif text.startswith(("File ", "  File ")):
            in_cell = False
        arrow = re.match(r"^-*>\s*(\d+)\s?(.*)$", text)
        if arrow and in_cell:
            found = (int(arrow.group(1)), arrow.group(2))
    return found


def _unraised_failure(
    nb: nbformat.NotebookNode, failed: dict[str, Any] | None, last_cell: int | None, tail: list[str],
) -> dict[str, Any] | None:  # fmt: skip
    """The cell papermill was running when it failed with no error in the cell itself.

    A kernel that dies (a crash in native code, out of memory, ``os._exit``) leaves no
    error output, and papermill even marks its cell completed: the cell is the last
    one papermill started, the exception is the last one in papermill's log.
    """
    if failed is None:
        if last_cell is None or not 0 < last_cell <= len(nb.cells):
            return None
        failed = _cell_failure(nb, last_cell - 1, {})
    exception = next((m for line in reversed(tail) if (m := _LOG_EXCEPTION.match(_ANSI.sub("", line)))), None)
    if exception is None:
        return dict(failed, evalue="the cell did not complete")
    ename, evalue = exception.group(1).rpartition(".")[2], exception.group(2)
    if ename == "DeadKernelError":
        evalue = ("the kernel died while running this cell (a crash in native code, running out of "
                  "memory, os._exit or a kill); the executed notebook keeps what it printed before")  # fmt: skip
    return dict(failed, ename=ename, evalue=evalue)


def _error_text(failed: dict[str, Any] | None, tail: list[str]) -> str:
    if failed:
        return f"{failed['ename']}: {failed['evalue']}"
    # No cell raised: papermill itself failed (kernel did not start, bad path...).
    relevant = [line for line in tail if line.strip()]
    return "\n".join(relevant[-15:]) or "papermill exited with an error and no output"


def _copy_output(out_path: Path, output: str | None, file: Path, job_id: str) -> str | None:
    """Copy the executed notebook to ``output`` (a file, folder or fsspec URL); its URL, or None."""
    if not output or not out_path.exists():
        return None
    url = output
    if output.endswith("/") or Path(output).is_dir():
        url = output.rstrip("/") + f"/{file.stem}-{job_id[:8]}.ipynb"
    try:
        import fsspec

        with open(out_path, "rb") as src, fsspec.open(url, "wb", auto_mkdir=True) as dst:
            shutil.copyfileobj(src, dst)
    except Exception as exc:
        log.warning("could not write the executed notebook to %s: %s", url, exc)
        return None
    return url


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()  # the artifact store's content address


def _open_store(store: SqlStore | None) -> tuple[SqlStore | None, dict[str, str]]:
    """(the store, or None when it does not answer; the URLs its records are addressed to)."""
    from ..store import get_store
    from ..tracking.spool import unreachable

    if store is None:
        try:
            store = get_store()
        except Exception as exc:
            if not unreachable(exc):
                raise
            url = config.store_url()
            return None, {"store": url, "artifacts": config.artifacts_url(None, store=url)}
    return store, {"store": store.url, "artifacts": store.artifacts.url}


