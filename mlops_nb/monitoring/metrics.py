"""Scoring a model on labelled data with a named metric (scikit-learn's implementations)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import MonitorError
from ..report import higher_is_better  # noqa: F401 - re-exported for checks

def default_metric(model: Any) -> str:
    return "accuracy" if hasattr(model, "classes_") or hasattr(model, "predict_proba") else "rmse"


def score(model: Any, features: pd.DataFrame, labels: pd.Series, metric: str) -> float:
    """``metric`` of ``model`` on ``features``/``labels``: accuracy, f1, precision, recall, roc_auc,
    log_loss, rmse, mse, mae, r2."""
    from sklearn import metrics as m

    name = metric.lower()
    y = labels.to_numpy()
    if name in ("roc_auc", "log_loss"):
        proba = np.asarray(model.predict_proba(features))
        if name == "log_loss":
            return float(m.log_loss(y, proba, labels=getattr(model, "classes_", None)))
        return float(m.roc_auc_score(y, proba[:, 1]) if proba.shape[1] == 2 else m.roc_auc_score(y, proba, multi_class="ovr"))
    predicted = np.asarray(model.predict(features))
    functions = {
        "accuracy": m.accuracy_score,
        "f1": lambda a, b: m.f1_score(a, b, average="binary" if len(np.unique(a)) <= 2 else "macro"),
        "precision": lambda a, b: m.precision_score(a, b, average="binary" if len(np.unique(a)) <= 2 else "macro", zero_division=0),
        "recall": lambda a, b: m.recall_score(a, b, average="binary" if len(np.unique(a)) <= 2 else "macro", zero_division=0),
        "rmse": lambda a, b: float(np.sqrt(m.mean_squared_error(a, b))),
        "mse": m.mean_squared_error,
        "mae": m.mean_absolute_error,
        "r2": m.r2_score,
    }
    if name not in functions:
        raise MonitorError(
            f"Unknown metric {metric!r}: use one of accuracy, f1, precision, recall, roc_auc, log_loss, rmse, mse, mae, r2.",
            metric=metric,
        )
    return float(functions[name](y, predicted))
