"""Types of libraries mlops_nb does not import up front, reached through ``feed``'s fallback.

Registering a type needs its library imported, and importing pandas alone
costs a kernel's first watched cell 0.2 s. So the fallback looks each library
up in ``sys.modules``, never importing it: an object of theirs exists only if
they are. pandas' encoders (:mod:`.frames`) register on its first object.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from .arrays import feed_sparse
from .arrow import feed_arrow
from .estimators import feed_estimator, feed_internal_state
from .framing import feed, unsupported


_pandas_registered = False  # set once .frames is imported: every estimator's fallback skips the check


@feed.register(object)
def _feed_optional(obj: Any, h: Any) -> None:
    global _pandas_registered
    if not _pandas_registered and "pandas" in sys.modules and any(
        c.__module__.partition(".")[0] == "pandas" for c in type(obj).__mro__
    ):
        importlib.import_module(".frames", __package__)  # registers pandas' types with feed
        _pandas_registered = True
        if feed.dispatch(type(obj)) is not _feed_optional:
            return feed(obj, h)
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(obj, base.BaseEstimator):
        return feed_estimator(obj, h)
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return feed_arrow(obj, h)
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(obj):
        return feed_sparse(obj, h)
    if type(obj).__module__.split(".")[0] in ("sklearn", "scipy"):
        return feed_internal_state(obj, h)
    raise unsupported(obj)
