"""scikit-learn estimators: type, parameters and learned state.

The learned state is every instance attribute that is not a parameter,
timings and caches excluded, so an identical refit, or a call to
``transform``, keeps the digest. scikit-learn is never imported at module
import time.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from mlops_nb.errors import FingerprintError

from .framing import atom, container, feed, type_name, unsupported

# Estimator attributes that are not model content: timings, thread counts,
# id()s, callbacks, and caches filled by transform.
_VOLATILE_ATTRS = frozenset({
    "refit_time_", "_n_threads", "_init_prev_time", "_iter_prev_time", "_stop_words_id", "_cached_dict",
    "_skl_callbacks", "_skl_callbacks_to_teardown", "_callback_fit_ctx", "_parent_callback_ctx",
})  # fmt: skip


def feed_estimator(est: Any, h: Any) -> None:
    # Learned state is every instance attribute that is not a parameter, private
    # ones included: KNeighbors* keep the training data in _fit_X, and
    # HistGradientBoosting* their trees in _predictors.
    try:
        params = _params(est)
    except Exception as exc:  # a custom estimator not following sklearn's conventions
        raise FingerprintError(f"Cannot fingerprint {type(est).__qualname__}: get_params() failed: {exc}",
                               type_name=type_name(type(est))) from exc  # fmt: skip
    state = getattr(est, "__dict__", {})
    learned = {k: v for k, v in state.items() if k not in params and k not in _VOLATILE_ATTRS}
    if isinstance(learned.get("cv_results_"), dict):  # fit/score timings vary run to run
        learned["cv_results_"] = {k: v for k, v in learned["cv_results_"].items() if not k.endswith("_time")}
    container(h, b"sklearn", 3)
    atom(h, b"type", type_name(type(est)).encode())
    for tag, attrs in ((b"params", params), (b"learned", learned)):
        container(h, tag, len(attrs))
        for name in sorted(attrs):
            atom(h, b"name", name.encode())
            try:
                feed(attrs[name], h)
            except FingerprintError as exc:
                where = f"{type(est).__qualname__}.{name}"
                raise FingerprintError(f"{exc.message} (at {where})", **exc.fields) from None


def _params(est: Any) -> dict[str, Any]:
    """``est.get_params(deep=False)``, without its per-call signature inspection when that is sklearn's own.

    A forest holds hundreds of trees: inspecting each tree's ``__init__`` took
    a third of the forest's fingerprint.
    """
    cls = type(est)
    base = sys.modules["sklearn.base"].BaseEstimator  # est is an estimator: sklearn is imported
    if getattr(cls, "get_params", None) is base.get_params:
        return {key: getattr(est, key) for key in _param_names(cls)}
    return est.get_params(deep=False)


@functools.lru_cache(maxsize=512)
def _param_names(cls: type) -> tuple[str, ...]:
    return tuple(cls._get_param_names())


def feed_internal_state(obj: Any, h: Any) -> None:
    """A scikit-learn or scipy internal held by a fitted estimator (tree, loss, spline...).

    Its pickle state is its content; for extension types, the pickle recipe.
    """
    if hasattr(obj, "get_n_calls"):  # KDTree/BallTree: their state counts queries, skip that
        state = obj.get_arrays()
    elif hasattr(obj, "dist") and hasattr(obj, "kwds"):  # frozen scipy.stats distribution
        state = (type_name(type(obj.dist)), obj.args, obj.kwds)
    else:
        state = getattr(obj, "__getstate__", lambda: getattr(obj, "__dict__", None))()
    if state is None:
        try:
            state = obj.__reduce_ex__(2)[1:]  # the type, framed below, implies the callable
        except TypeError:
            raise unsupported(obj) from None
    container(h, b"state", 2)
    atom(h, b"type", type_name(type(obj)).encode())
    feed(state, h)


def is_fitted_estimator(obj: Any) -> bool:
    """True if ``obj`` is a scikit-learn estimator instance passing ``check_is_fitted`` (never raises)."""
    base = sys.modules.get("sklearn.base")  # not imported: obj cannot be an estimator
    try:
        if base is None or not isinstance(obj, base.BaseEstimator):  # a proxy's __class__ may raise
            return False
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(obj)
    except Exception:
        return False
    return True
