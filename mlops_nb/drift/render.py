"""Static views of a DriftReport: HTML table with inline SVG histograms, and
matplotlib histograms. Only aggregated counts are drawn, never raw points."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

REF_COLOR = "#4c72b0"
CUR_COLOR = "#dd8452"
DRIFT_COLOR = "#c0392b"
OK_COLOR = "#2e7d32"
SKIP_COLOR = "#7f8c8d"


def status_badge(row: dict) -> str:
    if row["drifted"]:
        why = "missing share" if row.get("missing_drift") and not row.get("test_drifted") else "drift"
        color, text = DRIFT_COLOR, why
    elif row["status"] != "ok":
        color, text = SKIP_COLOR, row["status"]
    else:
        color, text = OK_COLOR, "ok"
    return (
        f'<span style="background:{color};color:white;border-radius:3px;padding:1px 6px;'
        f'font-size:11px">{html.escape(text)}</span>'
    )


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def svg_histogram(hist: dict | None, width: int = 120, height: int = 28) -> str:
    """Tiny inline SVG: reference (blue) and current (orange) shares per bin."""
    if not hist:
        return ""
    ref = np.asarray(hist["ref"], dtype=float)
    cur = np.asarray(hist["cur"], dtype=float)
    ref = ref / ref.sum() if ref.sum() else ref
    cur = cur / cur.sum() if cur.sum() else cur
    top = max(float(ref.max(initial=0)), float(cur.max(initial=0)), 1e-12)
    n = len(ref)
    step = width / max(n, 1)
    parts = [f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for vals, color, off in ((ref, REF_COLOR, 0.0), (cur, CUR_COLOR, 0.5)):
        w = max(step * 0.5 - 0.3, 0.5)
        bars = []
        for i in range(n):
            h = vals[i] / top * (height - 2)
            if h > 0:
                bars.append(f"M{i * step + off * step:.1f} {height}v{-h:.1f}h{w:.1f}v{h:.1f}z")
        parts.append(f'<path d="{"".join(bars)}" fill="{color}" opacity="0.85"/>')
    parts.append("</svg>")
    return "".join(parts)


def header_html(report) -> str:
    verdict = "Dataset drift detected" if report.dataset_drift else "No dataset drift"
    color = DRIFT_COLOR if report.dataset_drift else OK_COLOR
    warn = "".join(f'<div style="color:#b36b00">⚠ {html.escape(w)}</div>' for w in report.warnings)
    return (
        f'<div style="font-family:sans-serif;margin-bottom:6px">'
        f'<b style="font-size:15px">{report.n_drifted} of {report.n_columns} columns drifted</b> '
        f'({report.share_drifted:.0%}; dataset drift when ≥ {report.drift_share:.0%}) — '
        f'<b style="color:{color}">{verdict}</b><br>'
        f'<span style="color:#555;font-size:12px">reference: {html.escape(str(report.reference_label))} '
        f"({report.reference_kind}, {report.reference_rows} rows) · current: {report.current_rows} rows</span>"
        f"{warn}</div>"
    )


def table_html(report, rows: list[dict] | None = None, with_svg: bool = True) -> str:
    rows = report.rows if rows is None else rows
    head = ["column", "type", "test", "score", "threshold", "status", "missing ref → cur", "unseen", "note"]
    if with_svg:
        head.insert(6, "reference vs current")
    th = "".join(f'<th style="text-align:left;padding:2px 8px">{h}</th>' for h in head)
    body = []
    for r in rows:
        unseen = r.get("unseen_categories") or []
        unseen_txt = f"{len(unseen)} ({r['unseen_share']:.1%})" if unseen else "–"
        test = r["test"] or "–"
        if r.get("severity"):
            test += f" ({r['severity']})"
        cells = [
            f"<b>{html.escape(str(r['column']))}</b>",
            r["type"],
            html.escape(test),
            fmt(r["score"]),
            fmt(r["threshold"]),
            status_badge(r),
            f"{share(r['ref_missing_share'])} → {share(r['cur_missing_share'])}",
            unseen_txt,
            f'<span style="color:#666;font-size:11px">{html.escape(r["note"] or "")}</span>',
        ]
        if with_svg:
            cells.insert(6, svg_histogram(report.histograms.get(r["column"])))
        bg = "#fdecea" if r["drifted"] else ""
        tds = "".join(f'<td style="padding:2px 8px;vertical-align:middle">{c}</td>' for c in cells)
        body.append(f'<tr style="background:{bg}">{tds}</tr>')
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:12px">'
        f'<thead><tr style="border-bottom:1px solid #999">{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def report_html(report) -> str:
    """Self-contained static HTML (no JavaScript): header and table, drifted first."""
    rows = sorted(report.rows, key=lambda r: (not r["drifted"], r["status"] != "ok"))
    legend = (
        f'<div style="font-family:sans-serif;font-size:11px;color:#555;margin-top:4px">'
        f'<span style="color:{REF_COLOR}">■</span> reference <span style="color:{CUR_COLOR}">■</span> current '
        f"(shares per bin)</div>"
    )
    return f'<div class="mlops-drift-report">{header_html(report)}{table_html(report, rows)}{legend}</div>'


def plot_histogram(hist: dict, row: dict, ax=None):
    """Reference vs current shares on shared bins; bars per value for categories."""
    from matplotlib.figure import Figure

    fig = None
    if ax is None:
        fig = Figure(figsize=(6.4, 3.4), dpi=90)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    ref = np.asarray(hist["ref"], dtype=float)
    cur = np.asarray(hist["cur"], dtype=float)
    ref_s = ref / ref.sum() if ref.sum() else ref
    cur_s = cur / cur.sum() if cur.sum() else cur
    if hist["kind"] == "bins":
        edges = np.asarray(hist["edges"], dtype=float)
        widths = np.diff(edges)
        ax.bar(edges[:-1], ref_s, width=widths, align="edge", color=REF_COLOR, alpha=0.55, label="reference")
        ax.bar(edges[:-1], cur_s, width=widths, align="edge", color=CUR_COLOR, alpha=0.55, label="current")
        if hist.get("datetime"):
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(
                FuncFormatter(lambda x, _pos: str(pd.Timestamp(x, unit="s").date()))
            )
            for lab in ax.get_xticklabels():
                lab.set_rotation(30)
        if hist.get("clipped"):
            ax.text(0.99, 0.97, "outliers in edge bins", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    else:
        x = np.arange(len(ref_s))
        ax.bar(x - 0.2, ref_s, width=0.4, color=REF_COLOR, label="reference")
        ax.bar(x + 0.2, cur_s, width=0.4, color=CUR_COLOR, label="current")
        labels = [lab if len(lab) <= 14 else lab[:13] + "…" for lab in hist["labels"]]
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center")
    ax.set_ylabel("share of rows")
    verdict = "DRIFT" if row["drifted"] else "no drift"
    score = "" if row["score"] is None else f" {row['test']}={row['score']:.3g} (threshold {row['threshold']:g})"
    ax.set_title(f"{row['column']}: {verdict}{score}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure_png(fig) -> bytes:
    """PNG bytes of a matplotlib Figure (Agg canvas, no pyplot state)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def ensure_figure_display() -> None:
    """Let IPython show bare matplotlib Figures (made without pyplot) as PNG."""
    try:
        from IPython import get_ipython
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, figure_png)
