"""mlops_nb: MLOps inside the Jupyter notebook.

``%load_ext mlops_nb`` registers the ``%mlops`` magics; the same features are
available to scripts and papermill jobs through this module's functions.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .config import configure, init
from .errors import MlopsError


def fingerprint(obj: Any) -> str:
    """Content fingerprint of ``obj``: see :func:`mlops_nb.fingerprint.fingerprint`.

    A thin wrapper so that ``import mlops_nb`` does not import pandas and numpy.
    """
    from .fingerprint import fingerprint as _fingerprint

    return _fingerprint(obj)


class _Package(types.ModuleType):
    # Importing the subpackage mlops_nb.fingerprint sets the package attribute of
    # that name; the public function must keep it (as the eager import used to).
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "fingerprint" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from .version import __version__  # noqa: E402

__all__ = [
    "MlopsError", "Run", "__version__", "active_run", "configure", "drift", "drift_over_time",
    "fingerprint", "init", "load_model", "log_metric", "log_model", "log_param", "log_params",
    "lineage", "runs", "track", "validate", "run_notebook", "batch", "schedule", "Scheduler",
    "register", "promote", "approve", "rollback", "remove_alias", "models", "versions", "get_model_version",
    "audit", "audit_head", "verify_audit", "predict", "serve", "monitor", "monitors", "alerts", "check_monitor",
    "monitor_history", "sync", "snapshot", "load_data", "export_data", "data_diff", "reproduce",
]  # fmt: skip

# Heavier features are imported on first use, keeping %load_ext fast.
_LAZY = {
    **dict.fromkeys(
        ("Run", "active_run", "log_metric", "log_model", "log_param", "log_params", "runs", "sync", "track"),
        "mlops_nb.tracking",
    ),  # the tracking API pulls in SQLAlchemy and pandas
    "drift_over_time": "mlops_nb.drift", "DriftReport": "mlops_nb.drift",
    "validate": "mlops_nb.jobs", "run_notebook": "mlops_nb.jobs", "batch": "mlops_nb.jobs",
    "schedule": "mlops_nb.jobs", "Scheduler": "mlops_nb.jobs", "JobRun": "mlops_nb.jobs",
    "ValidationResult": "mlops_nb.jobs", "BatchResult": "mlops_nb.jobs",
    "register": "mlops_nb.registry", "promote": "mlops_nb.registry", "approve": "mlops_nb.registry",
    "rollback": "mlops_nb.registry", "remove_alias": "mlops_nb.registry", "models": "mlops_nb.registry",
    "versions": "mlops_nb.registry", "get_model_version": "mlops_nb.registry", "audit": "mlops_nb.registry",
    "audit_head": "mlops_nb.registry", "verify_audit": "mlops_nb.registry", "ModelVersion": "mlops_nb.registry",
    "Promotion": "mlops_nb.registry", "load_model": "mlops_nb.registry", "lineage": "mlops_nb.registry",
    "search_runs": "mlops_nb.search", "RunPage": "mlops_nb.search",
    "predict": "mlops_nb.scoring", "serve": "mlops_nb.scoring", "ScoringResult": "mlops_nb.scoring",
    "monitor": "mlops_nb.monitoring", "monitors": "mlops_nb.monitoring", "alerts": "mlops_nb.monitoring",
    "check_monitor": "mlops_nb.monitoring", "monitor_history": "mlops_nb.monitoring",
    "snapshot": "mlops_nb.data", "load_data": "mlops_nb.data", "export_data": "mlops_nb.data",
    "data_diff": "mlops_nb.data.diff", "reproduce": "mlops_nb.reproduction",
}  # fmt: skip

_loaded: dict[int, Any] = {}


def __getattr__(name: str) -> Any:
    import importlib

    if name == "drift":
        # ``mlops_nb.drift`` is a callable package: it serves as the function too.
        return importlib.import_module("mlops_nb.drift")
    if name == "charts":  # mlops_nb.charts.show_runs(...) without importing the package first
        return importlib.import_module("mlops_nb.charts")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlops_nb' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """Register ``%mlops`` / ``%%mlops`` (called by ``%load_ext mlops_nb``)."""
    from .config import metric_regex, settings
    from .magics import MlopsMagics

    try:
        metric_regex(settings.metric_pattern)  # a bad MLOPS_NB_METRIC_PATTERN fails here, clearly
    except MlopsError as exc:
        from IPython.core.error import UsageError

        raise UsageError(str(exc)) from None
    unload_ipython_extension(ipython)  # loading twice must not double anything
    magics = MlopsMagics(ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics
    from .tracking.writer import prepare

    prepare(ipython)  # in a kernel: the recorder process starts on the other core


def unload_ipython_extension(ipython) -> None:
    """Undo :func:`load_ipython_extension`, events included."""
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    magics.autotracker.disable()
    magics.hooks.uninstall()
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("mlops", None)
