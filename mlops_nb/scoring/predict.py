"""Batch scoring: ``mlops_nb.predict("churn@production", "new.parquet")`` — checked, recorded, drift-checked."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import DriftError, MlopsError
from .model import ScoringModel, load_scoring_model

if TYPE_CHECKING:
    from ..drift.report import DriftReport
    from ..store import SqlStore

_READERS = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}


@dataclass
class ScoringResult:
    """What a scoring run did: the predictions, the fixed version used, the run and the drift of the input."""

    predictions: pd.DataFrame
    model: str | None
    version: int | None
    digest: str
    run_id: str
    rows: int
    drift: DriftReport | None = None
    output: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}" if self.model else f"model:{self.digest}"

    def summary(self) -> str:
        drift = f" · drift {self.drift.n_drifted}/{self.drift.n_columns} columns" if self.drift is not None else ""
        where = f" → {self.output}" if self.output else ""
        return f"scored {self.rows} rows with {self.ref} (run {self.run_id[:8]}){drift}{where}"

    def __repr__(self) -> str:
        return f"<ScoringResult {self.summary()}>"


def read_table(data: str | os.PathLike[str]) -> pd.DataFrame:
    """A ``.parquet`` or ``.csv`` file as a DataFrame."""
    path = Path(data).expanduser()
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise MlopsError(f"Cannot read {str(path)!r}: give a .parquet or .csv file.", path=str(path))
    if not path.exists():
        raise MlopsError(f"The input file {str(path)!r} does not exist.", path=str(path))
    try:
        return reader(path)
    except ImportError as exc:  # parquet without pyarrow
        raise MlopsError(f"Cannot read {path.name}: {exc}. Install pyarrow (pip install pyarrow) or use CSV.") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise MlopsError(f"Cannot read {str(path)!r} as {path.suffix[1:]}: {exc}.", path=str(path)) from None


def write_table(frame: pd.DataFrame, output: str | os.PathLike[str]) -> str:
    """Write ``frame`` as ``.parquet`` or ``.csv`` (temp file + rename: a reader never sees half a file)."""
    path = Path(output).expanduser()
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise MlopsError(f"Cannot write {str(path)!r}: give a .parquet or .csv output file.", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    except ImportError as exc:
        tmp.unlink(missing_ok=True)
        raise MlopsError(f"Cannot write {path.name}: {exc}. Install pyarrow (pip install pyarrow) or write CSV.") from None
    os.replace(tmp, path)
    return str(path)


def predict(
    model: str | ScoringModel = "churn@production",
    data: pd.DataFrame | str | os.PathLike[str] | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    keep: list[str] | None = None,
    drift_check: bool = True,
    trust: Any = False,
    store: SqlStore | None = None,
) -> ScoringResult:
    """Score ``data`` with the model version ``model`` names, recorded as a scoring run.

    Parameters
    ----------
    model : str or ScoringModel
        ``NAME@ALIAS`` (resolved once: the whole batch uses that one version),
        ``NAME:VERSION``, a model digest, or an already loaded :class:`ScoringModel`.
    data : DataFrame or path
        The rows to score; a ``.parquet`` or ``.csv`` file is read.
    output : path, optional
        Where to write the predictions (``.parquet`` or ``.csv``).
    keep : list of str, optional
        Input columns copied beside the predictions (e.g. an id).
    drift_check : bool
        Compare the input with the training data's stored profile and keep the check.

    Raises
    ------
    SchemaMismatch
        ``data`` lacks a training column or has one with another type.

    The run (name ``score-NAME``) records the model version as params and
    tags, the input as an input data version, the row count and the drift
    share as metrics, and the predictions as an output.
    """
    from ..store import get_store
    from ..tracking.run import track

    if data is None:
        raise MlopsError("predict() needs data: a DataFrame or a .parquet/.csv path.")
    store = store or get_store()
    scorer = model if isinstance(model, ScoringModel) else load_scoring_model(model, trust=trust, store=store)
    model = scorer.label if isinstance(model, ScoringModel) else model
    frame = data if isinstance(data, pd.DataFrame) else read_table(data)
    scorer.check(frame)  # before any run is recorded: a wrong file leaves no trace but the error
    v = scorer.version
    tags = {"kind": "scoring", "model": v.name or "", "model_version": str(v.version or ""), "model_ref": model}
    source = str(data) if not isinstance(data, pd.DataFrame) else "DataFrame"
    notes: list[str] = []
    report = None
    with track(f"score-{v.name or v.digest[:8]}", inputs={"input": frame}, tags=tags, store=store) as run:
        run.log_params({
            "model": v.name, "model_version": v.version, "model_digest": v.digest,
            "model_ref": model, "input": source,
        })  # fmt: skip
        predictions = scorer.predict(frame)
        if keep:
            missing = [c for c in keep if c not in frame.columns]
            if missing:
                raise MlopsError(f"keep names column(s) the input lacks: {', '.join(missing)}.")
            predictions = pd.concat([frame[keep], predictions], axis=1)
        run.log_metric("rows", float(len(frame)))
        if drift_check:
            report = input_drift(scorer, frame, store)
            if isinstance(report, str):
                notes.append(report)
                run.set_tag("drift", "unavailable")
                report = None
            else:
                run.log_metric("drift_share", report.share_drifted)
                run.log_metric("n_drifted", float(report.n_drifted))
                run.set_tag("drift", "yes" if report.dataset_drift else "no")
        written = write_table(predictions, output) if output is not None else None
        if written:
            run.log_param("output", written)
        run.log_output("predictions", predictions)
    return ScoringResult(predictions, v.name, v.version, v.digest, run.id, len(frame), report, written, notes)


def input_drift(scorer, frame: pd.DataFrame, store: SqlStore) -> DriftReport | str:
    """Drift of ``frame`` against the stored profile of the model's training data (saved), or why not."""
    from ..drift import drift

    v = scorer.version
    ref = f"model:{v.name}:{v.version}" if v.name else f"model:{v.digest}"
    if scorer.training_digest is None:
        return f"no drift check: {v.ref} has no recorded training DataFrame"
    # The model's training data from lineage, the same input training_schema() chose.
    columns = [c for c, dtype in scorer.schema.items() if dtype != "unknown"]
    try:
        report = drift(ref, frame, columns=columns, store=store)
        report.save(store)
        return report
    except (DriftError, MlopsError) as exc:
        return f"no drift check: {exc}"
