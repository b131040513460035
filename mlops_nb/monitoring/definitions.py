"""Monitor definitions kept in the registry: add, list, remove."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..environment import current_user
from ..errors import MonitorError

if TYPE_CHECKING:
    from ..store import SqlStore

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
#: The retrain notebook receives the new data's location in this parameter.
DATA_PARAMETER = "data_path"
#: A data notebook receives the file it must write in this parameter.
OUTPUT_PARAMETER = "output_path"
#: Data of this form is the traffic a scoring server logged (mlops_nb.scoring.traffic).
SERVED_PREFIX = "served:"


def monitor(
    name: str,
    *,
    model: str,
    data: str | os.PathLike[str],
    retrain: str | os.PathLike[str],
    cron: str = "0 * * * *",
    drift_share: float | None = None,
    metric: str | None = None,
    min: float | None = None,  # noqa: A002 - mirrors --min
    max: float | None = None,  # noqa: A002
    label_column: str | None = None,
    parameters: dict[str, Any] | None = None,
    eval_fraction: float = 0.3,
    timeout: float | None = None,
    tz: str = "UTC",
    replace: bool = False,
    since: str | None = None,
    store: SqlStore | None = None,
) -> dict[str, Any]:
    """Define a monitor: each cron slot, check the newest data against ``model``; retrain on a threshold.

    Parameters
    ----------
    model : str
        ``NAME@ALIAS`` (e.g. ``churn@production``): the champion, and the alias
        a better challenger is promoted to (through the registry's policy).
    data : str
        A glob (the newest matching ``.parquet``/``.csv`` file is checked), a
        notebook that writes the data to its ``output_path`` parameter, or
        ``served:NAME@ALIAS`` (the requests ``mlops-nb serve --log-sample`` logged).
    since : str, optional
        With ``served:`` data, the window checked (``1d``, ``12h``); default all logged requests.
    retrain : path
        Notebook run as a job when a threshold is crossed, with ``data_path``
        set to the new data; it registers its model with ``mlops_nb.register(..., name=NAME)``.
    drift_share : float, optional
        Trigger when at least this share of the model's columns drifted.
    metric, min, max : optional
        Trigger when ``metric`` of the model on the new data (labels in
        ``label_column``) falls below ``min`` or above ``max``.
    eval_fraction : float
        With labels, this share of the new rows is held out: the retrain
        notebook never sees it, and champion and challenger are scored on it.
    """
    from ..jobs.notebook import declared_parameters, file_hash, notebook_file
    from ..jobs.schedules import check_cron
    from ..registry import get_model_version, parse_reference
    from ..store import get_store

    store = store or get_store()
    if not isinstance(name, str) or not _NAME.match(name):
        raise MonitorError(f"Invalid monitor name {name!r}: letters, digits, '_', '-', '.'; start with a letter or digit.")
    kind, model_name, alias = parse_reference(model)
    if kind != "alias":
        raise MonitorError(f"--model must name an alias (e.g. {model_name}@production), not {model!r}: the monitor moves it.")
    get_model_version(model, store=store)  # the alias must exist now
    check_cron(cron, tz)
    if drift_share is None and (min is None and max is None):
        raise MonitorError("Give at least one threshold: --drift-share X, or --metric NAME with --min/--max.")
    if drift_share is not None and not 0 < drift_share <= 1:
        raise MonitorError(f"--drift-share must be in (0, 1], got {drift_share}.")
    if (min is not None or max is not None) and not metric:
        raise MonitorError("--min/--max need --metric NAME (e.g. --metric accuracy --min 0.8).")
    if metric and label_column is None:
        raise MonitorError(f"--metric {metric} needs --label-column: the column of the new data holding the true labels.")
    if metric:
        _check_metric(metric)
    if not 0 < eval_fraction < 1:
        raise MonitorError(f"eval_fraction must be between 0 and 1, got {eval_fraction}.")
    data_text = str(data)
    if since is not None:
        data_text = f"{data_text} --since {since}"
    if data_text.startswith(SERVED_PREFIX):
        from ..scoring.traffic import parse_served

        if parse_served(data_text) is None:
            raise MonitorError(f"Cannot read {data_text!r}: use served:NAME@ALIAS with an optional --since 1d.")
    elif since is not None:
        raise MonitorError("--since applies to served:NAME@ALIAS data only (the requests a server logged).")
    elif data_text.endswith(".ipynb"):
        data_file = notebook_file(data_text)
        if OUTPUT_PARAMETER not in declared_parameters(data_file):
            raise MonitorError(f"The data notebook {data_file} must declare {OUTPUT_PARAMETER!r} in its parameters cell (the file it writes).")
        data_text = str(data_file)
    else:
        data_text = str(Path(data_text).expanduser().absolute())
        if not glob.has_magic(data_text) and not Path(data_text).parent.is_dir():
            raise MonitorError(f"The folder of {data_text!r} does not exist: give a glob such as 'incoming/*.parquet'.")
    retrain_file = notebook_file(retrain)
    declared = declared_parameters(retrain_file)
    if DATA_PARAMETER not in declared:
        raise MonitorError(
            f"The retrain notebook {retrain_file} must declare {DATA_PARAMETER!r} in its parameters cell: "
            "the monitor passes the new data's location there."
        )
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise MonitorError(f"Parameter(s) {', '.join(unknown)} are not declared in {retrain_file} (declared: {', '.join(declared)}).")
    row = {
        "name": name, "model": f"{model_name}@{alias}", "data": data_text, "cron": cron, "timezone": tz,
        "drift_share": drift_share, "metric": metric, "metric_min": min, "metric_max": max,
        "label_column": label_column, "retrain": str(retrain_file), "retrain_hash": file_hash(retrain_file),
        "parameters": dict(parameters or {}), "eval_fraction": eval_fraction, "timeout": timeout,
        "paused": False, "user": current_user(),
    }  # fmt: skip
    store.save_monitor(row, replace=replace)
    return store.get_monitor(name)


def _check_metric(metric: str) -> None:
    known = {"accuracy", "f1", "precision", "recall", "roc_auc", "log_loss", "rmse", "mse", "mae", "r2"}
    if metric.lower() not in known:
        raise MonitorError(f"Unknown metric {metric!r}: use one of {', '.join(sorted(known))}.", metric=metric)


def monitors(*, store: SqlStore | None = None) -> list[dict[str, Any]]:
    """Every monitor with its latest firing."""
    from ..store import get_store

    return (store or get_store()).list_monitors()


def remove_monitor(name: str, *, store: SqlStore | None = None) -> None:
    """Delete a monitor (its checks and alerts stay)."""
    from ..store import get_store

    (store or get_store()).remove_monitor(name)


def work_dir(store: SqlStore, name: str) -> Path:
    """Where a monitor keeps the files it hands to notebooks (beside a SQLite registry, else MLOPS_NB_HOME)."""
    from .. import config

    url = store.url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        base = Path(url[len("sqlite:///"):]).resolve().parent
    else:
        base = config.home_dir()
    path = base / "monitoring" / name
    path.mkdir(parents=True, exist_ok=True)
    return path
