"""The kernel side of mlops_nb: what happens around a cell, and how its record reaches the store.

In the order a tracked cell meets them:

* :mod:`.hooks` and :mod:`.autotrack`: IPython's cell events (``%%mlops track``
  and ``%mlops autotrack``); :mod:`.cells` runs a cell body as IPython would;
* :mod:`.capture`: what the cell read and produced (data, models, metric
  scalars), :mod:`.shown_metrics` the metrics it displayed, :mod:`.staleness`
  inputs made by cells that changed since;
* :mod:`.run`: the :class:`Run` and :func:`track` API that the magics, scripts
  and papermill jobs share; :mod:`.starts` writes a run's start row only if it
  lasts long enough for others to care (short runs are one transaction);
* :mod:`.records`: a run as plain messages; :mod:`.writer` sends them to the
  store now or in the background, through :mod:`.recorder`, the process beside
  a Jupyter kernel; :mod:`.model_io` turns models into bytes and back.

Nothing here is imported by the store: the writer registers its read barrier
on the store (:func:`mlops_nb.store.hooks.add_read_barrier`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Run, active_run, log_metric, log_model, log_param, log_params, runs, track

_FROM_RUN = {"Run", "active_run", "log_metric", "log_model", "log_param", "log_params", "runs", "track"}


def __getattr__(name: str) -> Any:
    # The API loads on first use: the store's read barrier and the spool need none of it.
    if name in _FROM_RUN:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sync() -> None:
    """Wait until every run (and data snapshot) this process recorded in the background is in the store.

    Reads through mlops_nb wait by themselves; call this before another
    process (a script, a test, the CLI) reads the registry while this kernel
    keeps running.  Records waiting in the local spool (the registry was
    unreachable) are written now if the registry answers.
    """
    from .. import config
    from .spool import replay
    from .writer import wait

    starts = sys.modules.get("mlops_nb.tracking.starts")
    if starts is not None:  # runs of this process still unseen by others
        starts.flush()
    wait()
    snapshots = sys.modules.get("mlops_nb.snapshots.background")
    if snapshots is not None:  # data snapshots still being written
        snapshots.wait()
    replay(config.store_url())


__all__ = ["Run", "active_run", "log_metric", "log_model", "log_param", "log_params", "runs", "sync", "track"]
