"""Parameter grids: one job run per combination, on a local pool or a Dask cluster.

Locally, each combination is its own papermill process; a thread per worker
slot only waits on it, so N workers means at most N notebooks (processes) at
once, without pickling anything or forking a process that holds database
connections.  With Dask, each combination runs on a worker, which starts the
papermill process there and records into the same registry (give the cluster
a shared store: PostgreSQL, or a SQLite file on a shared disk for a local
cluster).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import config
from ..environment import current_user
from ..errors import JobError
from .execute import JobRun, run_notebook
from .notebook import check_parameter_names, file_hash, notebook_file, parse_value

if TYPE_CHECKING:
    import pandas as pd

    from ..store.sql import SqlStore

log = logging.getLogger("mlops_nb.jobs")

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


@dataclass
class BatchResult:
    """The job runs of one batch (in grid order) and where they ran."""

    id: str
    notebook_path: str
    backend: str
    runs: list[JobRun] = field(default_factory=list)
    duration: float = 0.0

    @property
    def n_failed(self) -> int:
        return sum(not r.ok for r in self.runs)

    @property
    def ok(self) -> bool:
        return self.n_failed == 0

    def table(self, store=None) -> pd.DataFrame:
        """Parameters × metrics × status, one row per combination."""
        return batch_table(self.runs, store)


def expand_grid(grid: Grid) -> list[dict[str, Any]]:
    """Combinations of a grid: a mapping of name -> values (cartesian product) or a list of mappings."""
    if isinstance(grid, Mapping):
        names = list(grid)
        values = [v if isinstance(v, (list, tuple)) else [v] for v in grid.values()]
        if any(len(v) == 0 for v in values):
            raise JobError("Every grid parameter needs at least one value.")
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    if isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)) and all(isinstance(g, Mapping) for g in grid):
        return [dict(g) for g in grid]
    raise JobError("A grid is a mapping of parameter name to a list of values, or a list of parameter mappings.")


def load_grid(path: str | os.PathLike[str]) -> Grid:
    """Read a grid from a YAML (or JSON) file."""
    try:
        with open(path, encoding="utf-8") as f:
            grid = yaml.safe_load(f)
    except OSError as exc:
        raise JobError(f"Cannot read the grid file {path}: {exc.strerror}.", path=str(path)) from None
    except yaml.YAMLError as exc:
        raise JobError(f"The grid file {path} is not valid YAML: {exc}", path=str(path)) from None
    if isinstance(grid, Mapping) and set(grid) == {"grid"}:
        grid = grid["grid"]
    expand_grid(grid)  # reject malformed grids now, with the file name in the message
    return grid


def parse_grid_options(pairs: Sequence[tuple[str, str]]) -> dict[str, list[Any]]:
    """``-p NAME v1,v2,...`` pairs as a grid mapping (values typed like papermill's ``-p``)."""
    grid: dict[str, list[Any]] = {}
    for name, values in pairs:
        grid.setdefault(name, []).extend(parse_value(v.strip()) for v in values.split(","))
    return grid


def batch(
    notebook: str | os.PathLike[str],
    grid: Grid,
    *,
    workers: int | None = None,
    dask: Any = None,
    timeout: float | None = None,
    cell_timeout: float | None = None,
    kernel: str | None = None,
    store: SqlStore | None = None,
    progress: bool = True,
) -> BatchResult:
    """Run ``notebook`` once per parameter combination, in parallel.

    Parameters
    ----------
    notebook : path
        The ``.ipynb`` file.
    grid : mapping or list of mappings
        ``{"C": [0.1, 1.0], "max_depth": [2, 4]}`` (all combinations) or explicit combinations.
    workers : int, optional
        Notebooks run at once on the local pool (default: number of CPUs, at most the grid size).
    dask : str or distributed.Client, optional
        Scheduler address or client: run on that Dask cluster instead.
    timeout, cell_timeout, kernel :
        As for :func:`~mlops_nb.jobs.execute.run_notebook`, per combination.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    BatchResult
        Every combination's job run, failed ones included (one failure does not stop the others).
    """
    from ..store import get_store

    file = notebook_file(notebook)
    combos = expand_grid(grid)
    if not combos:
        raise JobError("The grid has no combinations.")
    check_parameter_names(file, combos)  # names and types of every combination, one parse for all
    store = store or get_store()
    client = _dask_client(dask) if dask is not None else None  # an unreachable cluster fails before anything is recorded
    batch_id = uuid.uuid4().hex
    workers = max(1, workers or min(len(combos), os.cpu_count() or 1))
    backend = f"dask:{_address(dask)}" if dask is not None else f"local:{workers}"
    store.start_batch(
        batch_id, notebook_path=str(file), notebook_hash=file_hash(file), grid=combos, backend=backend,
        n_total=len(combos), user=current_user(),
    )  # fmt: skip
    log.info("batch %s: %d combinations of %s on %s", batch_id[:8], len(combos), file.name, backend)
    options = {"timeout": timeout, "cell_timeout": cell_timeout, "kernel": kernel}
    started = time.time()
    results: dict[int, JobRun] = {}
    bar = _progress_bar(len(combos), file.name, progress)
    try:
        runner = _run_dask if client is not None else _run_local
        for index, run in runner(file, combos, batch_id, store, options, workers, client):
            results[index] = run
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=sum(not r.ok for r in results.values()), refresh=False)
    finally:
        if bar is not None:
            bar.close()
        if client is not None and client is not dask:
            client.close()
        failed = sum(not r.ok for r in results.values()) + (len(combos) - len(results))
        store.finish_batch(batch_id, status="finished" if failed == 0 else "failed", n_failed=failed)
    return BatchResult(batch_id, str(file), backend, [results[i] for i in range(len(combos))], time.time() - started)


def _run_local(file: Path, combos, batch_id, store, options, workers, _dask):
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-nb-batch") as pool:
        futures = {
            pool.submit(_guarded, file, combo, batch_id, store, options): i for i, combo in enumerate(combos)
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


def _dask_client(dask: Any):
    """A client of the Dask cluster ``dask`` (address or client), or a JobError within a few seconds."""
    try:
        from distributed import Client
    except ImportError:
        raise JobError("Running a batch on Dask needs distributed: pip install 'mlops_nb[dask]'.") from None
    if isinstance(dask, Client):
        return dask
    timeout = float(os.environ.get("MLOPS_NB_DASK_CONNECT_TIMEOUT", _DASK_CONNECT_TIMEOUT_S))
    try:
        # Dask's own default waits 30 s before saying the scheduler is not there.
        return Client(dask, timeout=timeout)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise JobError(
            f"Cannot reach the Dask scheduler at {dask} within {timeout:g} s ({' '.join(str(exc).split())}). "
            "Check the address (tcp://HOST:8786) and that the scheduler runs there, or leave out --dask "
            "to use the local pool.",
            address=str(dask),
        ) from None


_DASK_CONNECT_TIMEOUT_S = 5.0


def _run_dask(file: Path, combos, batch_id, store, options, _workers, client):
    from distributed import as_completed as dask_completed

    env = {"MLOPS_NB_PROJECT": config.settings.project} if config.settings.project else {}
    futures = {
        client.submit(
            run_on_worker, str(file), combo, batch_id, store.url, store.artifacts.url, options, env, i,
            pure=False, key=f"mlops-nb-{batch_id[:8]}-{i}",
        ): i
        for i, combo in enumerate(combos)
    }  # fmt: skip
    for future in dask_completed(futures):
        index = futures[future]
        try:
            yield index, JobRun(**future.result())
        except Exception as exc:  # the worker died or could not reach the store
            yield index, _not_run(file, combos[index], batch_id, f"the Dask task failed: {exc}")


def run_on_worker(
    notebook: str, parameters: dict[str, Any], batch_id: str, store_url: str, artifacts_url: str,
    options: dict[str, Any], env: dict[str, str], member: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Combination ``member`` of a batch on a Dask worker (module-level so that workers can import it).

    Dask runs a task again when the worker running it dies.  Each attempt of a member
    has a job run id derived from (batch, member, attempt): a new attempt finds the
    earlier ones, returns one that finished (the worker died after recording it), or
    marks a ``running`` one ``lost`` (its worker, and with it the notebook, is gone:
    papermill dies with its runner) and runs as the next attempt.  So a member is
    recorded as finished once, and a lost attempt stays visible as such.
    """
    from ..store import get_store

    store = get_store(store_url, artifacts_url)
    extra: dict[str, Any] = {}
    if member is not None:
        job_id, attempt, done = _claim_member(store, batch_id, member)
        if done is not None:
            return done.to_dict()
        extra = {"job_run_id": job_id, "attempt": attempt}
    return _guarded(Path(notebook), parameters, batch_id, store, dict(options, env=env, **extra)).to_dict()


def member_job_id(batch_id: str, member: int, attempt: int) -> str:
    """The job run id of ``attempt`` (from 1) of combination ``member`` of a Dask batch."""
    return uuid.uuid5(uuid.UUID(batch_id), f"member/{member}/attempt/{attempt}").hex


def _claim_member(store, batch_id: str, member: int) -> tuple[str, int, JobRun | None]:
    """(job run id, attempt number, the member's finished job run if an earlier attempt recorded one)."""
    from .execute import job_run_from_record

    earlier = {row["id"]: row for row in store.list_job_runs(batch_id=batch_id)}
    attempt = 1
    while (job_id := member_job_id(batch_id, member, attempt)) in earlier:
        row = earlier[job_id]
        if row["status"] not in ("running", "lost"):
            return job_id, attempt, job_run_from_record(row)
        if row["status"] == "running":
            log.warning("batch %s: member %d attempt %d lost with its Dask worker; running it again",
                        batch_id[:8], member, attempt)  # fmt: skip
            store.finish_job_run(job_id, status="lost", error="its Dask worker died; Dask ran the combination again "
                                 f"(attempt {attempt + 1})")  # fmt: skip
        attempt += 1
    return job_id, attempt, None


def _guarded(file: Path, combo: dict[str, Any], batch_id: str, store, options: dict[str, Any]) -> JobRun:
    try:
        return run_notebook(file, combo, batch_id=batch_id, store=store, **options)
    except Exception as exc:  # e.g. the registry was unreachable: record it, keep the batch going
        log.exception("batch %s: combination %s could not run", batch_id[:8], combo)
        return _not_run(file, combo, batch_id, str(exc))


def _not_run(file: Path, combo: dict[str, Any], batch_id: str, error: str) -> JobRun:
    now = time.time()
    return JobRun(
        id="", notebook_path=str(file), notebook_hash="", parameters=combo, kernel="", status="failed",
        start_time=now, end_time=now, duration=0.0, error=error, batch_id=batch_id,
    )  # fmt: skip


def batch_table(runs: Sequence[JobRun], store=None) -> pd.DataFrame:
    """Parameters × metrics × status for job runs (metrics from their tracked runs).

    A metric recorded by two differently named runs of one notebook (say
    ``accuracy`` of ``train-logreg`` and of ``train-forest``) gets one column
    per run name: ``train-logreg.accuracy``.
    """
    import pandas as pd

    from ..store import get_store

    store = store or get_store()
    batch_ids = {run.batch_id for run in runs}
    if len(batch_ids) == 1 and None not in batch_ids:  # one query for the whole batch
        tracked_runs = store.list_runs(batch_id=batch_ids.pop())
    else:
        tracked_runs = [t for run in runs if run.id for t in store.list_runs(job_run_id=run.id)]
    by_job: dict[str, list[dict[str, Any]]] = {}
    for tracked in sorted(tracked_runs, key=lambda r: r["start_time"]):
        by_job.setdefault(tracked["job_run_id"], []).append(tracked)
    per_run: list[dict[tuple[str, str], float]] = []
    for run in runs:
        found: dict[tuple[str, str], float] = {}
        for tracked in by_job.get(run.id, []):
            for key, value in tracked["metrics"].items():
                found[(tracked["name"] or "", key)] = value
        per_run.append(found)
    names_per_metric: dict[str, set[str]] = {}
    for found in per_run:
        for name, key in found:
            names_per_metric.setdefault(key, set()).add(name)
    rows = []
    for run, found in zip(runs, per_run, strict=True):
        row: dict[str, Any] = {"job_run": run.id[:8] or "-", "status": run.status}
        row.update(run.parameters)
        for (name, key), value in found.items():
            column = key if len(names_per_metric[key]) == 1 or not name else f"{name}.{key}"
            row[column] = value
        row["duration_s"] = round(run.duration, 1)
        row["error"] = run.describe_failure() if not run.ok else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _progress_bar(total: int, label: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"batch {label}", unit="run")


def _address(dask: Any) -> str:
    if isinstance(dask, str):
        return dask
    return getattr(getattr(dask, "scheduler", None), "address", None) or str(dask)
