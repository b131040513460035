"""Types of optional libraries (scikit-learn, pyarrow, scipy), reached through ``feed``'s fallback.

They cannot be registered by type without importing their library, so the
fallback looks each library up in ``sys.modules``, never importing it: an
object of theirs exists only if they are.
"""

from __future__ import annotations

import sys
from typing import Any

from .arrays import feed_sparse
from .arrow import feed_arrow
from .estimators import feed_estimator, feed_internal_state
from .framing import feed, unsupported


@feed.register(object)
def _feed_optional(obj: Any, h: Any) -> None:
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
