"""Re-run a recorded run in a fresh kernel and check it gives the same models and metrics.

>>> result = mlops_nb.reproduce("1a2b3c4d")
>>> result.matched
True

A **job run** is executed again from its notebook, exactly as stored (content hash
checked; the copy kept with the job when the file changed since), with the same
parameters, in a copy of its working folder as it was when it started
(:mod:`.workdir`). A **tracked cell** is executed as recorded after its inputs are rebuilt
(:mod:`.rebuild`). Files the run read are put back from their snapshots where the file on
disk changed, and restored afterwards. The reproduction is a job run of its own, and its
runs carry the tag ``mlops.reproduces`` naming the original.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MlopsError, NotFoundError, ReproduceError
from .compare import Comparison, compare_runs
from .workdir import folder_as_before

TAG = "mlops.reproduces"


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`: one comparison per reproduced run."""

    original: str
    kind: str  # "job" or "cell"
    job_run_id: str | None
    pairs: list[tuple[str, str | None, Comparison]] = field(default_factory=list)  # (original, new, checks)
    notes: list[str] = field(default_factory=list)
    status: str = "finished"

    @property
    def matched(self) -> bool:
        return self.status == "finished" and bool(self.pairs) and all(
            new is not None and c.matched for _, new, c in self.pairs)  # fmt: skip

    def text(self) -> str:
        from ..report import table_text

        head = (f"reproduce {self.kind} {self.original[:8]} -> job run {str(self.job_run_id)[:8]}: "
                + ("MATCHES" if self.matched else "DOES NOT MATCH"))  # fmt: skip
        lines = [head]
        for old, new, comparison in self.pairs:
            lines.append(f"run {old[:8]} -> {new[:8] if new else '(none)'}")
            rows = [[c.what, _cell(c.original), _cell(c.reproduced), "yes" if c.match else "NO", c.why]
                    for c in comparison.checks]  # fmt: skip
            if rows:
                lines.append(table_text(["check", "original", "reproduced", "same", "why"], rows))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.text())}</pre>"


def _cell(value: Any) -> Any:
    return "-" if value is None else value


def reproduce(run_id: str, *, rtol: float = 1e-9, timeout: float | None = 1800.0, store: Any = None) -> Reproduction:
    """Re-execute run ``run_id`` (a job run or a tracked run) and compare (see the module docs)."""
    from ..store import get_store

    store = store or get_store()
    try:
        job = store.get_job_run(run_id)
    except NotFoundError:
        job = None
    if job is not None:
        return _reproduce_job(store, job, rtol=rtol, timeout=timeout)
    try:
        run = store.get_run(run_id)
    except NotFoundError:
        raise ReproduceError(f"{run_id!r} is neither a run nor a job run of this registry.", run_id=run_id) from None
    if run.get("job_run_id"):
        parent = store.get_job_run(run["job_run_id"])
        if parent["status"] != "running":  # still running: this very job asks; its cell is re-run instead
            result = _reproduce_job(store, parent, rtol=rtol, timeout=timeout)
            result.notes.append(f"run {run['id'][:8]} ran in job run {parent['id'][:8]}: the whole job was reproduced")
            return result
    return _reproduce_cell(store, run, rtol=rtol, timeout=timeout)


# ---- a job run --------------------------------------------------------------------------
def _reproduce_job(store: Any, job: dict[str, Any], *, rtol: float, timeout: float | None) -> Reproduction:
    from ..fingerprint.notebooks import notebook_file_hash
    from ..jobs import run_notebook

    path = Path(job["notebook_path"])
    originals = [store.get_run(r) for r in (job.get("run_ids") or [])]
    result = Reproduction(job["id"], "job", None)
    try:
        same = path.is_file() and notebook_file_hash(path) == job["notebook_hash"]
    except (OSError, ValueError):
        same = False
    recorded = Path((job.get("environment") or {}).get("cwd") or path.parent)
    with contextlib.ExitStack() as stack:
        cwd = recorded if recorded.is_dir() else path.parent
        workdir = stack.enter_context(folder_as_before(cwd, job["start_time"], result.notes))
        if workdir != cwd and path.is_relative_to(cwd):
            # run the notebook from inside the copy, so that its relative paths mean the same
            copy = workdir / path.relative_to(cwd)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if same and not copy.exists():  # touched since the job, same content: left out of the copy
                shutil.copy2(path, copy)
            path = copy
        if not same:
            path = stack.enter_context(_stored_notebook(store, job, path))
            result.notes.append(f"{job['notebook_path']} changed since the job ran: its stored copy was executed")
        stack.enter_context(_restored_files(store, originals, workdir, result.notes))
        new = run_notebook(path, job.get("parameters") or {}, kernel=job.get("kernel"), cwd=workdir,
                           timeout=timeout, store=store, expected_hash=job["notebook_hash"],
                           env={"MLOPS_NB_REPRODUCES": job["id"]})  # fmt: skip
    return _finish(store, result, new, originals, rtol)


@contextlib.contextmanager
def _stored_notebook(store: Any, job: dict[str, Any], path: Path) -> Iterator[Path]:
    """The notebook as the job ran it, from its executed copy: outputs and the parameters
    papermill injected removed. Written beside the original, so relative paths still work."""
    from ..fingerprint.notebooks import notebook_hash

    if not job.get("output_digest"):
        raise ReproduceError(f"{path} changed since job run {job['id'][:8]} and no copy of it was kept.", run_id=job["id"])
    nb = json.loads(store.artifacts.get_bytes(job["output_digest"]))
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    if notebook_hash(nb) != job["notebook_hash"]:
        raise ReproduceError(
            f"{path} changed since job run {job['id'][:8]}, and the executed copy kept with it does not hash to "
            "the recorded notebook: check out the notebook as it was (git) and reproduce again.", run_id=job["id"])  # fmt: skip
    folder = path.parent if path.parent.is_dir() else Path.cwd()
    copy = folder / f".mlops-reproduce-{uuid.uuid4().hex[:8]}.ipynb"
    copy.write_text(json.dumps(nb))
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


# ---- a tracked cell ---------------------------------------------------------------------
def _reproduce_cell(store: Any, run: dict[str, Any], *, rtol: float, timeout: float | None) -> Reproduction:
    import nbformat

    from ..jobs import run_notebook

    if not run.get("source"):
        raise ReproduceError(f"Run {run['id'][:8]} recorded no source code, so there is nothing to re-run.",
                             run_id=run["id"])  # fmt: skip
    result = Reproduction(run["id"], "cell", None)
    folder = Path(run["notebook_path"]).parent if run.get("notebook_path") else Path.cwd()
    folder = folder if folder.is_dir() else Path.cwd()
    name = json.dumps(run.get("name") or f"reproduce {run['id'][:8]}")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext mlops_nb\nfrom mlops_nb.reproduction.rebuild import into as _mlops_into\n"
                                  f"_mlops_into(globals(), {run['id']!r})\ndel _mlops_into"),
        nbformat.v4.new_code_cell(f"%%mlops track --name {name}\n{run['source']}"),
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile("w", suffix=".ipynb", dir=folder, prefix=".mlops-reproduce-", delete=False) as f:
        nbformat.write(nb, f)
    try:
        with _restored_files(store, [run], folder, result.notes):
            new = run_notebook(f.name, {}, cwd=folder, timeout=timeout, store=store,
                               env={"MLOPS_NB_REPRODUCES": run["id"]})  # fmt: skip
    finally:
        os.unlink(f.name)
    return _finish(store, result, new, [run], rtol)


# ---- shared ---------------------------------------------------------------------------
def _finish(store: Any, result: Reproduction, new: Any, originals: list[dict[str, Any]], rtol: float) -> Reproduction:
    result.job_run_id, result.status = new.id, new.status
    if new.status != "finished":
        failed = new.failed_cell or {}
        result.notes.append(f"the reproduction {new.status}: {failed.get('ename', '')} {failed.get('evalue', '') or new.error or ''}".strip())
    fresh = sorted((store.get_run(r) for r in new.run_ids), key=lambda r: r.get("start_time") or 0)
    originals = sorted(originals, key=lambda r: r.get("start_time") or 0)
    taken: set[str] = set()
    for original in originals:
        match = _partner(original, [r for r in fresh if r["id"] not in taken])
        if match is not None:
            taken.add(match["id"])
        result.pairs.append((original["id"], match and match["id"], compare_runs(original, match or {}, rtol=rtol)))
    return result


def _partner(original: dict[str, Any], left: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The reproduced run of ``original``: the one left from the same cell (a job re-run numbers
    its cells alike) with the same name, else the first left with its name, else the first left."""
    same_cell = [r for r in left if r.get("execution_count") == original.get("execution_count")
                 and r.get("name") == original.get("name") and original.get("execution_count") is not None]  # fmt: skip
    named = [r for r in left if r.get("name") == original.get("name")]
    return (same_cell or named or left or [None])[0]


@contextlib.contextmanager
def _restored_files(store: Any, runs: list[dict[str, Any]], folder: Path, notes: list[str]) -> Iterator[None]:
    """Put the files the runs read back as they were, where they changed; undo it afterwards."""
    from ..data import load_data
    from ..fingerprint import fingerprint

    undo: list[tuple[Path, Path | None]] = []
    try:
        for run in runs:
            for record in run.get("inputs", []):
                if record.get("kind") != "file":
                    continue
                path = Path(record["name"])
                path = path if path.is_absolute() else folder / path
                try:
                    if path.is_file() and fingerprint(path) == record["digest"]:
                        continue
                    data = load_data(f"data:{record['digest']}", store=store)
                except MlopsError as exc:
                    notes.append(f"file {record['name']} changed and could not be restored: {exc}")
                    continue
                backup = None
                if path.exists():
                    backup = path.with_name(f".{path.name}.mlops-backup-{uuid.uuid4().hex[:8]}")
                    os.replace(path, backup)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                undo.append((path, backup))
                notes.append(f"file {record['name']} restored from its snapshot for the reproduction")
        yield
    finally:
        for path, backup in reversed(undo):
            if backup is not None:
                os.replace(backup, path)
            else:
                path.unlink(missing_ok=True)
