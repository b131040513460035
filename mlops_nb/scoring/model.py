"""A registered model version loaded for scoring: one fixed version, its input schema, its predictions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import MlopsError, NotFoundError, SchemaMismatch
from .fastpath import FastPath, compile_fast

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
    #: The numpy route for checked float rows (see :mod:`.fastpath`); None: every request goes through the model.
    fast: FastPath | None = None

    @property
    def label(self) -> str:
        return self.version.ref

    def check(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The columns the model needs, in training order; raise :class:`SchemaMismatch` otherwise."""
        if not isinstance(frame, pd.DataFrame):
            raise SchemaMismatch(f"{self.label} scores a table (DataFrame), not a {type(frame).__name__}.")
        # One dtypes lookup for all columns: frame[c] per column builds a Series each time (the
        # largest cost of scoring one row).
        kinds = frame.dtypes.tolist()
        text = {d: str(d) for d in set(kinds)}  # a handful of distinct dtypes, named once each
        dtypes = {str(c): text[d] for c, d in zip(frame.columns.tolist(), kinds, strict=True)}
        missing = [c for c in self.schema if c not in dtypes]
        mistyped = [
            f"{c} is {dtypes[c]} (trained on {self.schema[c]})"
            for c in self.schema
            if c in dtypes and not _compatible(self.schema[c], dtypes[c])
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
        wanted = list(self.schema)
        if frame.columns.tolist() == wanted:
            return frame  # already the training columns in order: no copy
        return frame.rename(columns=str)[wanted]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Predictions for ``frame`` (checked first): ``prediction`` (+ ``probability`` for binary classifiers)."""
        features = self.check(frame)
        matrix = _number_matrix(self.model, features)
        with warnings.catch_warnings():
            if matrix is not None:
                # check() matched the names the estimator was fitted with, in its order; handing it
                # the numbers alone skips sklearn's per-column pandas conversion (most of a small
                # request's cost), and its "X does not have valid feature names" remark with it.
                warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
                features = matrix
            # A pipeline's transforms run once for both predict and predict_proba (Pipeline would run them twice).
            model, features = _final_step(self.model, features)
            columns = {"prediction": np.asarray(model.predict(features))}
            proba = getattr(model, "predict_proba", None)
            classes = getattr(model, "classes_", None)
            if proba is not None and classes is not None and len(classes) == 2:
                try:
                    columns["probability"] = np.asarray(proba(features))[:, 1]
                except Exception:  # some estimators expose predict_proba but cannot use it (e.g. SVC without probability)
                    pass
        return pd.DataFrame(columns, index=frame.index)  # built once: adding a column costs as much again


def _number_matrix(model: Any, features: pd.DataFrame) -> np.ndarray | None:
    """``features`` as one int/float array when the model's first estimator takes columns by position.

    That is a scikit-learn estimator fitted on exactly these column names (so it checks names,
    then uses positions), and not one that picks columns by name (ColumnTransformer, FeatureUnion).
    """
    steps = getattr(model, "steps", None)
    first = steps[0][1] if type(model).__name__ == "Pipeline" and isinstance(steps, list) and steps else model
    names = getattr(first, "feature_names_in_", None)
    if (names is None or not type(first).__module__.startswith("sklearn.")
            or any(hasattr(first, a) for a in ("transformers_", "transformer_list", "steps"))):  # fmt: skip
        return None
    if len(names) != features.shape[1] or [str(n) for n in names] != features.columns.tolist():
        return None
    if not all(d.kind in "fi" for d in set(features.dtypes.tolist())):
        return None
    return features.to_numpy()


def _final_step(model: Any, features: Any) -> tuple[Any, Any]:
    """(the estimator that predicts, the features it receives): a sklearn Pipeline's transforms applied once."""
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or not steps or type(model).__name__ != "Pipeline":
        return model, features
    for _, step in steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if not hasattr(step, "transform"):
            return model, features  # not a plain chain of transforms: let the pipeline do it
        features = step.transform(features)
    final = steps[-1][1]
    return (model, features) if final is None or final == "passthrough" else (final, features)


def load_scoring_model(ref: str, *, trust: Any = False, store: SqlStore | None = None) -> ScoringModel:
    """Resolve ``ref`` (``NAME@ALIAS``, ``NAME:3``, a digest) once and load that version."""
    from ..registry import get_model_version, load_model
    from ..store import get_store

    store = store or get_store()
    version = get_model_version(ref, store=store)
    model = load_model(version, trust=trust, store=store)
    schema, digest = training_schema(version, model, store)
    # Only a model whose every column takes numbers: then rows of numbers pass check() by construction.
    numeric = all(_compatible(d, "float64") and _compatible(d, "int64") for d in schema.values())
    return ScoringModel(version, model, schema, digest, compile_fast(model, list(schema)) if numeric else None)


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
