"""A registered model version loaded for scoring: one fixed version, its input schema, its predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import MlopsError, NotFoundError, SchemaMismatch

if TYPE_CHECKING:
    from ..registry import ModelVersion
    from ..store import SqlStore


def dtype_family(dtype: str) -> str:
    """``numeric`` / ``bool`` / ``datetime`` / ``text``: what may stand in for what at scoring time."""
    d = str(dtype).lower()
    if d.startswith("bool"):
        return "bool"
    if d.startswith(("int", "uint", "float", "complex")):
        return "numeric"
    if d.startswith(("datetime", "timedelta", "period")):
        return "datetime"
    return "text"  # object, str, string, category


def _compatible(expected: str, actual: str) -> bool:
    if expected == "unknown":  # a feature the model names but the recorded schema lacks
        return True
    a, b = dtype_family(expected), dtype_family(actual)
    # A bool column read back from CSV/parquet may come as 0/1 integers, and vice versa.
    return a == b or {a, b} == {"bool", "numeric"}


@dataclass
class ScoringModel:
    """A model version resolved once (an alias never moves under it) and loaded.

    Attributes
    ----------
    version : ModelVersion
        The fixed version scored with.
    model : estimator
        The loaded object (content hash verified).
    schema : dict
        Column -> dtype the model expects, from its training data.
    """

    version: ModelVersion
    model: Any
    schema: dict[str, str]
    training_digest: str | None

    @property
    def label(self) -> str:
        return self.version.ref

    def check(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The columns the model needs, in training order; raise :class:`SchemaMismatch` otherwise."""
        if not isinstance(frame, pd.DataFrame):
            raise SchemaMismatch(f"{self.label} scores a table (DataFrame), not a {type(frame).__name__}.")
        columns = [str(c) for c in frame.columns]
        missing = [c for c in self.schema if c not in columns]
        mistyped = [
            f"{c} is {frame[c].dtype} (trained on {self.schema[c]})"
            for c in self.schema
            if c in columns and not _compatible(self.schema[c], str(frame[c].dtype))
        ]
        if missing or mistyped:
            parts = []
            if missing:
                parts.append("missing column(s) " + ", ".join(missing))
            if mistyped:
                parts.append("mistyped: " + "; ".join(mistyped))
            raise SchemaMismatch(
                f"The data does not match the training data of {self.label}: {'; '.join(parts)}. "
                "Score data with the columns and types the model was trained on.",
                missing=missing, mistyped=mistyped, model=self.label,
            )  # fmt: skip
        return frame.rename(columns=str)[list(self.schema)]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions for ``frame`` (checked first): ``prediction`` (+ ``probability`` for binary classifiers)."""
        features = self.check(frame)
        out = pd.DataFrame({"prediction": np.asarray(self.model.predict(features))}, index=frame.index)
        proba = getattr(self.model, "predict_proba", None)
        classes = getattr(self.model, "classes_", None)
        if proba is not None and classes is not None and len(classes) == 2:
            try:
                out["probability"] = np.asarray(proba(features))[:, 1]
            except Exception:  # some estimators expose predict_proba but cannot use it (e.g. SVC without probability)
                pass
        return out


def load_scoring_model(ref: str, *, trust: Any = False, store: SqlStore | None = None) -> ScoringModel:
    """Resolve ``ref`` (``NAME@ALIAS``, ``NAME:3``, a digest) once and load that version."""
    from ..registry import get_model_version, load_model
    from ..store import get_store

    store = store or get_store()
    version = get_model_version(ref, store=store)
    model = load_model(version, trust=trust, store=store)
    schema, digest = training_schema(version, model, store)
    return ScoringModel(version, model, schema, digest)


def training_schema(version: ModelVersion, model: Any, store: SqlStore) -> tuple[dict[str, str], str | None]:
    """Column -> dtype of the data ``version`` was trained on, restricted to what the model reads.

    The training run's largest DataFrame input is the feature table (the same
    choice drift makes); a model that knows its ``feature_names_in_`` narrows
    it to those columns (a label column the run also read is not needed to score).
    """
    frames = []
    for record in version.data:
        try:
            row = store.get_data_version(record["digest"])
        except NotFoundError:
            continue
        if row.get("kind") == "dataframe" and isinstance(row.get("schema"), dict):
            frames.append(row)
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    if not frames:
        if names is None:
            raise MlopsError(
                f"{version.ref} has no recorded training DataFrame and does not name its features, "
                "so its input schema is unknown: train it inside %%mlops track on a DataFrame."
            )
        return {n: "unknown" for n in names}, None
    best = max(frames, key=lambda r: int(np.prod(r.get("shape") or [0])))
    schema = {str(k): str(v) for k, v in best["schema"].items()}
    if names is not None:
        schema = {n: schema.get(n, "unknown") for n in names}
    return schema, best["digest"]
