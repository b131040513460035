"""Plain-text rendering of recorded runs."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any


_LOWER_IS_BETTER = re.compile(r"(loss|error|rmse|mse|mae|mape|deviance|log_?loss|brier|perplexity)$", re.I)


def higher_is_better(metric: str) -> bool:
    """Whether a bigger ``metric`` is better: losses, errors and their kin (``rmse``, ``mae``...) are not."""
    return not _LOWER_IS_BETTER.search(metric)


def shape_text(record: Mapping[str, Any]) -> str:
    """``569×31`` for a data record with a shape, else its kind (``file``...)."""
    shape = record.get("shape")
    return "×".join(str(d) for d in shape) if shape else record["kind"]


def number_text(value: float) -> str:
    """A metric value: integers as such, others to 4 significant digits."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def metrics_text(metrics: Mapping[str, float]) -> str:
    """``accuracy=0.958 f1=0.9667``."""
    return " ".join(f"{k}={number_text(v)}" for k, v in metrics.items())


def size_text(size: float | None) -> str:
    """Bytes for people: ``850 B``, ``12.4 KB``, ``1.2 GB`` (decimal units)."""
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def when_text(ts: float | None) -> str:
    """An epoch timestamp as UTC date and time to the second, ``-`` for none."""
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(sep=" ", timespec="seconds")


def table_text(header: list[str], rows: list[list[Any]]) -> str:
    """Columns aligned as ``DataFrame.to_string(index=False)`` aligns them: numbers right, text left."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(header))]
    widths = [max([len(header[i]), *(len(row[i]) for row in cells)]) for i in range(len(header))]
    lines = []
    for row in [header, *cells]:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric, strict=True)]
        lines.append(" ".join(parts).rstrip())
    return "\n".join(lines)


def listing_text(header: list[str], rows: list[list[Any]], empty: str) -> str:
    """:func:`table_text` of ``rows``, or ``empty`` (which should say what to do next) when there are none."""
    return table_text(header, rows) if rows else empty


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def run_report(run: Mapping[str, Any]) -> str:
    """A readable multi-line description of one run from ``SqlStore.get_run``."""
    lines = [
        f"run {run['id']}  {run.get('name') or ''}".rstrip(),
        f"  status     {run['status']}   project {run['project']}   user {run.get('user') or '-'}",
        f"  started    {when_text(run['start_time'])}   duration {run['duration'] or 0:.2f}s",
        f"  notebook   {run.get('notebook_path') or 'unknown'}   cell [{run.get('execution_count') or '-'}]",
    ]
    if run.get("git_commit"):
        lines.append(f"  git        {run['git_commit'][:12]}{' (dirty)' if run.get('git_dirty') else ''}")
    env = run.get("environment") or {}
    if env:
        pkgs = ", ".join(f"{k} {v}" for k, v in sorted(env.get("packages", {}).items()))
        lines.append(f"  python     {env.get('python')}   {pkgs}")
    if run.get("job_run_id"):
        lines.append(f"  job run    {run['job_run_id']}")
    for title, key in (("tags", "tags"), ("params", "params"), ("metrics", "metrics")):
        if run.get(key):
            lines.append(f"  {title}")
            lines.extend(f"    {k} = {v}" for k, v in run[key].items())
    for title, key in (("read", "inputs"), ("produced", "outputs")):
        if run.get(key):
            lines.append(f"  {title}")
            lines.extend(f"    {d['name']:<20} {d['kind']:<10} {shape_text(d):<12} {d['digest']}" for d in run[key])
    if run.get("models"):
        lines.append("  models")
        lines.extend(f"    {m['name']:<20} {m['class_name']}  version {m['digest']}  ({m['flavor']})" for m in run["models"])
    if run.get("warnings"):
        lines.append("  warnings")
        lines.extend(f"    ⚠ {w.get('message') or w}" for w in run["warnings"])
    if run.get("error"):
        lines.append("  error")
        lines.extend("    " + line for line in run["error"].rstrip().splitlines()[-6:])
    if run.get("source"):
        lines.append("  source")
        lines.extend("    " + line for line in run["source"].rstrip().splitlines())
    return "\n".join(lines)
