"""A numpy route for small requests to common linear models, checked against scikit-learn at load.

Scoring one row through scikit-learn costs about a millisecond, almost all of it input
validation run three times (scaler, ``predict``, ``predict_proba``: dtype, namespace and
dataframe-library checks, feature names), against microseconds for the arithmetic.  For a
fitted pipeline of ``StandardScaler`` steps ending in a binary ``LogisticRegression`` or a
single-target linear regressor, :func:`compile_fast` keeps the fitted arrays and does the same
operations, in the same order, as scikit-learn's own methods.  It is used only when, at load,
it gives bit-identical answers to the model's own methods on probe rows (see :func:`_agrees`); any other model
(or a version of scikit-learn computing differently) keeps the general route.

The server hands it a float array it has already checked: the training columns in order,
all numbers, all finite (scikit-learn's validation rejects NaN and infinities; such a
request takes the general route and gets its answer from there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Estimators whose arithmetic is mirrored (binary classification / one target only).
_CLASSIFIERS = frozenset({"LogisticRegression"})
_REGRESSORS = frozenset({"LinearRegression", "Ridge", "Lasso", "ElasticNet"})


@dataclass(frozen=True)
class FastPath:
    """A fitted scaler chain and linear model as arrays; ``__call__`` scores a checked float matrix."""

    scalers: tuple[tuple[np.ndarray | None, np.ndarray | None], ...]  # (mean or None, scale or None) per step
    coef_t: np.ndarray  # coef_.T as scikit-learn multiplies it: (n_features, 1) or (n_features,)
    intercept: Any
    classes: np.ndarray | None  # a classifier's classes_; None for a regressor

    def __call__(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """``prediction`` (and ``probability`` of ``classes[1]`` for a classifier) for the rows of ``X``."""
        from scipy.special import expit

        X = np.array(X, dtype=np.float64)  # a copy, as StandardScaler(copy=True) makes: the caller's array stays
        for mean, scale in self.scalers:
            if mean is not None:
                X -= mean
            if scale is not None:
                X /= scale
        scores = X @ self.coef_t + self.intercept
        if scores.ndim > 1:
            scores = scores.reshape(-1)
        if self.classes is None:
            return {"prediction": scores}
        prediction = self.classes[(scores > 0).astype(np.intp)]
        return {"prediction": prediction, "probability": expit(scores)}


def compile_fast(model: Any, columns: list[str]) -> FastPath | None:
    """The :class:`FastPath` of ``model`` fed ``columns`` in this order, or None when it has none
    (another estimator, other feature names, or answers differing from the model's own)."""
    try:
        fast = _build(model, columns)
        if fast is None or not _agrees(fast, model, columns):
            return None
        return fast
    except Exception:  # an estimator shaped unlike the ones mirrored here: the general route serves it
        return None


def _build(model: Any, columns: list[str]) -> FastPath | None:
    steps = [s for _, s in model.steps] if type(model).__name__ == "Pipeline" else [model]
    steps = [s for s in steps if s is not None and not (isinstance(s, str) and s == "passthrough")]
    if not steps or not all(type(s).__module__.startswith("sklearn.") for s in steps):
        return None
    names = getattr(steps[0], "feature_names_in_", None)
    if names is None or [str(n) for n in names] != list(columns):
        return None  # fitted without names, or on others: the general route checks and reorders them
    scalers = []
    for step in steps[:-1]:
        if type(step).__name__ != "StandardScaler":
            return None
        scale = step.scale_ if step.with_std else None
        scalers.append((step.mean_.astype(np.float64) if step.with_mean else None,
                        None if scale is None else scale.astype(np.float64)))  # fmt: skip
    final = steps[-1]
    kind = type(final).__name__
    coef = np.asarray(final.coef_)
    if kind in _CLASSIFIERS:
        classes = np.asarray(final.classes_)
        if len(classes) != 2 or coef.ndim != 2 or coef.shape[0] != 1:
            return None
        return FastPath(tuple(scalers), coef.T, final.intercept_, classes)
    if kind in _REGRESSORS and coef.ndim == 1:
        return FastPath(tuple(scalers), coef, final.intercept_, None)
    return None


def _agrees(fast: FastPath, model: Any, columns: list[str]) -> bool:
    """Bit-identical to the model's own ``predict`` (and ``predict_proba``) given the same probe rows (1, 2, 64).

    The same array, row-major as the server parses it: scikit-learn's own answers move by an ulp
    between a row-major and a column-major copy of the same rows (a DataFrame hands it the latter).
    """
    import warnings

    rng = np.random.default_rng(0)
    first = model.steps[0][1] if type(model).__name__ == "Pipeline" else model
    center = getattr(first, "mean_", np.zeros(len(columns)))
    spread = getattr(first, "scale_", None)
    spread = np.ones(len(columns)) if spread is None else spread
    for n in (1, 2, 64):
        X = center + spread * rng.normal(0, 2, (n, len(columns)))
        ours = fast(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "X does not have valid feature names": the order is the fitted one
            if not np.array_equal(np.asarray(model.predict(X)), ours["prediction"]):
                return False
            if "probability" in ours and not np.array_equal(np.asarray(model.predict_proba(X))[:, 1], ours["probability"]):
                return False
    return True
