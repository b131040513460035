"""Model monitoring: drift and metric checks of new data on a schedule, retraining, champion/challenger.

>>> mlops_nb.monitor("churn-weekly", model="churn@production", data="incoming/*.parquet",
...                  cron="0 6 * * 1", drift_share=0.3, retrain="notebooks/scheduled_retraining.ipynb")  # doctest: +SKIP
>>> mlops_nb.check_monitor("churn-weekly")   # fire now (the scheduler fires it on its cron)  # doctest: +SKIP
>>> mlops_nb.alerts()                        # decisions and their reasons  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .definitions import monitor, monitors, remove_monitor

if TYPE_CHECKING:
    import pandas as pd

    from ..store import SqlStore
    from .checks import CheckResult

__all__ = ["CheckResult", "alerts", "check_monitor", "monitor", "monitor_history", "monitors", "remove_monitor"]


def check_monitor(name: str, *, force: bool = False, store: SqlStore | None = None) -> CheckResult:
    """Fire monitor ``name`` now (recorded as a firing, like the scheduler's)."""
    from .firing import check_now

    return check_now(name, force=force, store=store)


def alerts(monitor: str | None = None, *, last: int | None = 50, store: SqlStore | None = None) -> pd.DataFrame:
    """Alerts, newest first: when, monitor, model version, decision and the reason."""
    import pandas as pd

    from ..store import get_store

    rows = (store or get_store()).list_alerts(monitor, last=last)
    frame = pd.DataFrame(rows, columns=["id", "created_at", "monitor", "severity", "kind", "model", "version", "decision", "message", "acknowledged", "check_id", "payload"])
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
    return frame


def monitor_history(name: str, *, last: int | None = 20, store: SqlStore | None = None) -> pd.DataFrame:
    """Checks of monitor ``name``, newest first, with their numbers and decisions."""
    import pandas as pd

    from ..store import get_store

    store = store or get_store()
    store.get_monitor(name)
    columns = ["id", "created_at", "version", "data_path", "rows", "drift_share", "metric", "metric_value",
               "triggered", "decision", "challenger_version", "reason"]  # fmt: skip
    frame = pd.DataFrame(store.list_monitor_checks(name, last=last), columns=columns)
    frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
    return frame


def __getattr__(name: str) -> Any:
    # CheckResult's module imports pandas: `mlops-nb alerts` prints its table without it.
    if name == "CheckResult":
        from .checks import CheckResult

        return CheckResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
