"""Can this notebook become a job?  Static checks, then two clean runs compared.

The two executions record into a throw-away store, so validating never adds
runs to the registry; only the verdict is stored there, keyed by the
notebook's content hash and parameters, which is what ``schedule add`` checks.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ..environment import current_user
from ..errors import ValidationFailed
from .execute import JobRun, run_notebook
from .hidden_state import execution_order_issues, find_hidden_state
from .notebook import (
    declared_parameters,
    kernel_name,
    load_notebook,
    notebook_file,
    notebook_hash,
    original_index,
    parameter_cells,
    params_hash,
)

if TYPE_CHECKING:
    from ..store.sql import SqlStore

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Check:
    """One validation check: ``status`` is ``pass``, ``fail`` or ``skip``; ``reason`` says why."""

    name: str
    status: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0

    def line(self) -> str:
        return f"{self.status.upper():<5} {self.name:<16} {self.reason}"


@dataclass
class ValidationResult:
    """Every check of one validation, as stored in the registry."""

    id: str
    notebook_path: str
    notebook_hash: str
    parameters: dict[str, Any]
    params_hash: str
    checks: list[Check]
    created_at: float
    duration: float = 0.0

    @property
    def passed(self) -> bool:
        """Every check ran and passed (what scheduling requires)."""
        return all(c.status == PASS for c in self.checks)

    @property
    def failed(self) -> bool:
        """At least one check failed (skipped checks are not failures)."""
        return any(c.status == FAIL for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def report(self) -> str:
        """The checks as pass/fail lines, then a verdict."""
        lines = [f"validate {self.notebook_path}  (hash {self.notebook_hash[:12]})"]
        lines += ["  " + c.line() for c in self.checks]
        verdict = "PASSED" if self.passed else ("FAILED" if self.failed else "INCOMPLETE")
        lines.append(f"{verdict}: {sum(c.status == PASS for c in self.checks)}/{len(self.checks)} checks passed "
                     f"in {self.duration:.1f} s (validation {self.id[:8]})")  # fmt: skip
        return "\n".join(lines)

    def raise_for_status(self) -> ValidationResult:
        if self.failed:
            failing = "; ".join(f"{c.name}: {c.reason}" for c in self.checks if c.status == FAIL)
            raise ValidationFailed(f"{self.notebook_path} failed validation: {failing}", validation_id=self.id)
        return self

    def to_junit(self) -> str:
        """The checks as a JUnit XML test suite (one test case per check)."""
        suite = ET.Element(
            "testsuite", name=f"mlops-nb validate {Path(self.notebook_path).name}",
            tests=str(len(self.checks)), failures=str(sum(c.status == FAIL for c in self.checks)),
            skipped=str(sum(c.status == SKIP for c in self.checks)), errors="0", time=f"{self.duration:.3f}",
        )  # fmt: skip
        props = ET.SubElement(suite, "properties")
        for key, value in (("notebook", self.notebook_path), ("notebook_hash", self.notebook_hash),
                           ("parameters", json.dumps(self.parameters, default=repr)), ("validation_id", self.id)):  # fmt: skip
            ET.SubElement(props, "property", name=key, value=value)
        classname = "mlops_nb.validate." + Path(self.notebook_path).stem.replace(".", "_")
        for c in self.checks:
            case = ET.SubElement(suite, "testcase", classname=classname, name=c.name, time=f"{c.duration:.3f}")
            if c.status == FAIL:
                failure = ET.SubElement(case, "failure", message=c.reason, type="ValidationFailed")
                failure.text = c.reason + ("\n" + json.dumps(c.details, indent=2, default=str) if c.details else "")
            elif c.status == SKIP:
                ET.SubElement(case, "skipped", message=c.reason)
            else:
                ET.SubElement(case, "system-out").text = c.reason
        ET.indent(suite)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"

    def to_record(self) -> dict[str, Any]:
        record = {k: getattr(self, k) for k in ("id", "notebook_path", "notebook_hash", "parameters", "params_hash",
                                                "created_at", "duration")}  # fmt: skip
        record["passed"] = self.passed
        # JSON round trip: details may hold numpy scalars and such.
        record["checks"] = json.loads(json.dumps([asdict(c) for c in self.checks], default=str))
        record["parameters"] = json.loads(json.dumps(self.parameters, default=repr))
        return record


def validate(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    rtol: float = 0.0,
    timeout: float | None = None,
    kernel: str | None = None,
    execute: bool = True,
    store: SqlStore | None = None,
    record: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Check whether ``notebook`` can run unattended as a job.

    Parameters
    ----------
    notebook : path
        The ``.ipynb`` file.
    parameters : mapping, optional
        Values for the ``parameters`` cell; names the notebook does not declare fail.
    rtol : float
        Relative tolerance when comparing the metrics of the two runs (0: identical).
    timeout : float, optional
        Per-cell execution timeout in seconds for the two runs.
    kernel : str, optional
        Kernel to run; default the notebook's kernelspec.
    execute : bool
        False runs only the static checks (the result then cannot pass).
    store : SqlStore, optional
        Where the verdict is stored (default: the configured registry).
    record : bool
        Store the verdict.
    progress : callable, optional
        Called with a short status text as the runs advance.

    Returns
    -------
    ValidationResult
        Never raises for a failing check; see ``.failed`` / ``.raise_for_status()``.
    """
    from ..store import get_store

    started = time.time()
    file = notebook_file(notebook)
    nb = load_notebook(file)
    params = dict(parameters or {})
    checks = [_check_nbformat(nb)]
    kernel_check, resolved_kernel = _check_kernel(nb, kernel)
    checks += [kernel_check, _check_parameters(file, nb, params)]
    checks += _check_hidden_state(nb)
    runnable = checks[0].status == PASS and resolved_kernel is not None
    if not execute:
        skip = "not executed (static checks only)"
        checks += [Check("clean-run", SKIP, skip), Check("reproducible", SKIP, skip)]
    elif not runnable:
        skip = "skipped: the notebook cannot be executed until the checks above pass"
        checks += [Check("clean-run", SKIP, skip), Check("reproducible", SKIP, skip)]
    else:
        checks += _check_runs(file, params, rtol=rtol, timeout=timeout, kernel=resolved_kernel, progress=progress)
    result = ValidationResult(
        id=uuid.uuid4().hex, notebook_path=str(file), notebook_hash=notebook_hash(nb), parameters=params,
        params_hash=params_hash(params), checks=checks, created_at=started, duration=time.time() - started,
    )  # fmt: skip
    if record:
        (store or get_store()).add_validation(dict(result.to_record(), user=current_user()))
    return result


# ---- static checks ------------------------------------------------------------------
def _check_nbformat(nb: nbformat.NotebookNode) -> Check:
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "notebook"
        return Check("nbformat", FAIL, f"not a valid nbformat {nb.nbformat} notebook at {where}: {exc.message}")
    return Check("nbformat", PASS, f"valid nbformat {nb.nbformat}.{nb.nbformat_minor}")


def _check_kernel(nb: nbformat.NotebookNode, override: str | None) -> tuple[Check, str | None]:
    from jupyter_client.kernelspec import find_kernel_specs

    saved = kernel_name(nb)
    installed = find_kernel_specs()
    wanted = override or saved
    usable = wanted if wanted in installed else None
    if not saved:
        return Check("kernelspec", FAIL, "the notebook has no kernelspec in its metadata: open it in Jupyter, "
                     "pick a kernel and save"), usable  # fmt: skip
    if usable is None:
        return Check("kernelspec", FAIL, f"kernel {wanted!r} is not installed here (installed: "
                     f"{', '.join(sorted(installed)) or 'none'}); install it or pass --kernel"), None  # fmt: skip
    note = f" (running with {override!r})" if override and override != saved else ""
    return Check("kernelspec", PASS, f"kernel {saved!r}{note}", {"kernel": usable}), usable


def _check_parameters(file: Path, nb: nbformat.NotebookNode, params: Mapping[str, Any]) -> Check:
    tagged = parameter_cells(nb)
    if not tagged:
        return Check("parameters", FAIL, "no cell is tagged 'parameters': tag the cell that holds the "
                     "default values (cell toolbar → tags) so papermill can override them")  # fmt: skip
    if len(tagged) > 1:
        return Check("parameters", FAIL, f"cells {', '.join(map(str, tagged))} are all tagged 'parameters': "
                     "papermill uses only the first, keep one", {"cells": tagged})  # fmt: skip
    declared = declared_parameters(file)
    details = {"cell": tagged[0], "declared": declared}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        return Check("parameters", FAIL, f"-p {', '.join(unknown)}: not declared in the parameters cell "
                     f"(declared: {', '.join(declared) or 'none'})", details)  # fmt: skip
    shown = ", ".join(f"{n}: {d['type'] or '?'} = {d['default']}" for n, d in declared.items()) or "none declared"
    return Check("parameters", PASS, f"cell {tagged[0]}: {shown}", details)


def _check_hidden_state(nb: nbformat.NotebookNode) -> list[Check]:
    issues, notes = find_hidden_state(nb)
    certain = [i for i in issues if i.certain]
    details = {"issues": [asdict(i) for i in issues], "notes": notes}
    if certain:
        shown = "; ".join(i.describe() for i in certain[:3]) + (f"; and {len(certain) - 3} more" if len(certain) > 3 else "")
        hidden = Check("hidden-state", FAIL, shown, details)
    elif issues:
        hidden = Check("hidden-state", PASS, "no certain problem; unresolved after a star import or %run: "
                       + ", ".join(sorted({i.name for i in issues})), details)  # fmt: skip
    else:
        hidden = Check("hidden-state", PASS, "every name is defined by an earlier cell, an import or a builtin", details)
    order = execution_order_issues(nb)
    if order:
        ran = Check("execution-order", FAIL, "saved outputs come from an out-of-order session: " + "; ".join(order[:3])
                    + " (restart the kernel, run all, save)", {"issues": order})  # fmt: skip
    else:
        ran = Check("execution-order", PASS, "saved execution counts increase top to bottom")
    return [hidden, ran]


# ---- the two runs ------------------------------------------------------------------
def _check_runs(
    file: Path, params: dict[str, Any], *, rtol: float, timeout: float | None, kernel: str,
    progress: Callable[[str], None] | None,
) -> list[Check]:  # fmt: skip
    from ..store.sql import SqlStore

    def cells(label: str):
        if progress is None:
            return None
        return lambda event: progress(f"{label}: cell {event['cell']}/{event['total']}") if event["state"] == "start" else None

    scratch = Path(tempfile.mkdtemp(prefix="mlops-nb-validate-"))
    store = SqlStore(f"sqlite:///{scratch / 'registry.db'}", str(scratch / "artifacts"))
    try:
        first = run_notebook(file, params, cell_timeout=timeout, kernel=kernel, store=store, progress=cells("run 1/2"))
        clean = _run_check("clean-run", first, timeout)
        if not first.ok:
            return [clean, Check("reproducible", SKIP, "skipped: the first run failed")]
        second = run_notebook(file, params, cell_timeout=timeout, kernel=kernel, store=store, progress=cells("run 2/2"))
        if not second.ok:
            return [clean, Check("reproducible", FAIL, "the second run failed where the first passed: "
                                 + second.describe_failure(), {"failed_cell": second.failed_cell}, second.duration)]  # fmt: skip
        return [clean, compare_runs(store, first, second, rtol=rtol)]
    finally:
        store.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _run_check(name: str, run: JobRun, timeout: float | None) -> Check:
    if run.ok:
        limit = f", {timeout:g} s per cell" if timeout else ""
        return Check(name, PASS, f"ran in a fresh kernel in {run.duration:.1f} s{limit}", {}, run.duration)
    return Check(name, FAIL, run.describe_failure(), {"failed_cell": run.failed_cell, "error": run.error}, run.duration)


def compare_runs(store, first: JobRun, second: JobRun, *, rtol: float = 0.0) -> Check:
    """Compare what the tracked cells of two executions recorded: metrics, data and models."""
    a, b = _tracked(store, first.id), _tracked(store, second.id)
    cells = _cell_indices(store, first)
    differences: list[str] = []
    counted = {"metrics": 0, "data versions": 0, "model versions": 0}
    for key in sorted(set(a) | set(b), key=lambda k: (k[0] is None, k[0] or 0, k[1], k[2])):
        where = _where(key, cells)
        if key not in a or key not in b:
            differences.append(f"{where}: recorded a run in only one of the two executions")
            continue
        x, y = a[key], b[key]
        for metric in sorted(set(x["metrics"]) | set(y["metrics"])):
            counted["metrics"] += 1
            u, v = x["metrics"].get(metric), y["metrics"].get(metric)
            if u is None or v is None or not _close(u, v, rtol):
                differences.append(f"{where}: metric {metric} = {_num(u)} then {_num(v)}")
        for kind, label in (("inputs", "read"), ("outputs", "produced"), ("models", "model")):
            first_digests = {d["name"]: d["digest"] for d in x[kind]}
            second_digests = {d["name"]: d["digest"] for d in y[kind]}
            for name in sorted(set(first_digests) | set(second_digests)):
                counted["model versions" if kind == "models" else "data versions"] += 1
                u, v = first_digests.get(name), second_digests.get(name)
                if u != v:
                    differences.append(f"{where}: {label} {name} version {(u or '-')[:12]} then {(v or '-')[:12]}")
    details = {"differences": differences, "compared": counted, "rtol": rtol, "runs": len(a)}
    if differences:
        hint = " — unseeded randomness? seed it (np.random.seed, random_state=...)"
        shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more" if len(differences) > 4 else "")
        return Check("reproducible", FAIL, f"the two runs differ: {shown}{hint}", details, second.duration)
    if not a:
        return Check("reproducible", PASS, "both runs succeeded; no %%mlops track cell recorded anything to "
                     "compare", details, second.duration)  # fmt: skip
    tol = f" within rtol={rtol:g}" if rtol else ""
    what = ", ".join(_plural(n, k) for k, n in counted.items())
    return Check("reproducible", PASS, f"a second run recorded the same results{tol}: {_plural(len(a), 'tracked runs')}, {what}",
                 details, second.duration)  # fmt: skip


def _tracked(store, job_run_id: str) -> dict[tuple[int | None, str, int], dict[str, Any]]:
    """The runs of one execution keyed by (execution count, run name, occurrence)."""
    rows = sorted(store.list_runs(job_run_id=job_run_id), key=lambda r: (r["start_time"], r["id"]))
    keyed: dict[tuple[int | None, str, int], dict[str, Any]] = {}
    for row in rows:
        run = store.get_run(row["id"])
        n = 0
        while (run["execution_count"], run["name"] or "", n) in keyed:
            n += 1
        keyed[(run["execution_count"], run["name"] or "", n)] = run
    return keyed


def _cell_indices(store, run: JobRun) -> dict[int, int]:
    """Execution count -> index of the cell in the source notebook (from the executed copy)."""
    if not run.output_digest:
        return {}
    try:
        nb = nbformat.reads(store.artifacts.get_bytes(run.output_digest).decode("utf-8"), as_version=4)
    except Exception:
        return {}
    return {
        cell.execution_count: original_index(nb, i)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.get("execution_count") is not None
    }


def _where(key: tuple[int | None, str, int], cells: dict[int, int]) -> str:
    count, name, _ = key
    cell = f"cell {cells[count]}" if count in cells else f"cell [{count}]" if count is not None else "a cell"
    return f"{cell} ({name})" if name else cell


def _close(u: float, v: float, rtol: float) -> bool:
    if math.isnan(u) and math.isnan(v):
        return True
    return u == v or math.isclose(u, v, rel_tol=rtol, abs_tol=0.0)


def _num(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"



def _plural(n: int, noun: str) -> str:
    """``1 metric``, ``2 metrics``, ``1 data version`` (nouns are given in the plural)."""
    return f"{n} {noun[:-1] if n == 1 and noun.endswith('s') else noun}"
