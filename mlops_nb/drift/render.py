"""Static views of a DriftReport: HTML table with inline SVG histograms, and
matplotlib histograms. Only aggregated counts are drawn, never raw points."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

# SKETCH_NOTE: the engine's note on every row of a sketch (profile) reference, shown once in the header instead
from mlops_nb.profiling.dists import SKETCH_NOTE

REF_COLOR = "#4c72b0"
CUR_COLOR = "#dd8452"
DRIFT_COLOR = "#c0392b"
OK_COLOR = "#2e7d32"
SKIP_COLOR = "#7f8c8d"

TEST_NAMES = {
    "ks": "K-S", "chisquare": "chi-square", "ztest": "Z-test", "wasserstein": "Wasserstein",
    "jensenshannon": "Jensen-Shannon", "psi": "PSI", "hellinger": "Hellinger",
}  # fmt: skip
_RULE_SIGN = {"le": "≤", "lt": "<", "ge": "≥"}
_P_FLOOR = 1e-16  # below this a p-value is shown as "< 1e-16" (the full value stays in report.table)
_NOWRAP = "white-space:nowrap;"
_CELL = "padding:3px 8px;vertical-align:middle;"


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
        f'font-size:11px;white-space:nowrap">{html.escape(text)}</span>'
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


# ------------------------------------------------------------------ wording and order
def _spec(row: dict):
    from mlops_nb.drift.stattests import SPECS

    return SPECS.get(row.get("test") or "")


def score_kind(row: dict) -> str | None:
    """``"p_value"`` or ``"distance"``: what ``row["score"]`` is."""
    spec = _spec(row)
    return spec.kind if spec else None


def fmt_p(p: float) -> str:
    if p < _P_FLOOR:
        return "< 1e-16"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3g}"


def score_text(row: dict) -> str:
    """Table text: "p < 1e-16", "p = 0.0027" for p-values, "dist = 0.23" for distances."""
    if row["score"] is None:
        return "–"
    if score_kind(row) == "p_value":
        p = float(row["score"])
        return f"p {fmt_p(p)}" if p < _P_FLOOR else f"p = {fmt_p(p)}"
    return f"dist = {float(row['score']):.3g}"


def threshold_text(row: dict) -> str:
    """Drift rule as text, e.g. "≤ 0.05" (p-values) or "≥ 0.1" (distances)."""
    spec = _spec(row)
    if row["threshold"] is None or spec is None:
        return "–"
    return f"{_RULE_SIGN.get(spec.drift_rule, '')} {row['threshold']:g}"


def score_title(row: dict) -> str:
    """Chart title part, e.g. "K-S p-value = 3.1e-170 (drift if ≤ 0.05)"."""
    spec = _spec(row)
    if row["score"] is None or spec is None:
        return ""
    label = spec.label.replace("K-S", "KS")
    value = f"{float(row['score']):.2g}" if spec.kind == "p_value" else f"{float(row['score']):.3g}"
    return f"{label} = {value} (drift if {threshold_text(row)})"


def type_label(row: dict, hist: dict | None) -> str:
    """The column's type as tested: a number column with few values is tested and drawn
    as categories, e.g. "numerical (2 values)"."""
    ctype = row["type"]
    if ctype == "numerical" and hist and hist.get("kind") == "values" and "(other)" not in hist["labels"]:
        n = len(hist["labels"])
        return f"numerical ({n} value{'s' if n != 1 else ''})"
    return ctype


def row_notes(row: dict) -> list[str]:
    """Row-specific notes (the per-row quantile-sketch note is shown once, in the header)."""
    return [n for n in str(row.get("note") or "").split("; ") if n and n != SKETCH_NOTE]


def uses_sketch(report) -> bool:
    return any(SKETCH_NOTE in str(r.get("note") or "") for r in report.rows)


def strength(row: dict) -> float:
    """How strongly a column drifted, comparable across tests: distance / threshold, or
    log p / log threshold for p-values (> 1 means past the threshold); -1 without a test."""
    score, thr, kind = row["score"], row["threshold"], score_kind(row)
    if score is None or kind is None:
        return -1.0
    score = float(score)
    if kind == "p_value":
        lp = -math.log10(max(score, 1e-300))
        return lp / -math.log10(thr) if thr and 0 < thr < 1 else lp
    return score / thr if thr else score


def drift_order_key(row: dict):
    """Most drifted first: drifted before not, then by :func:`strength` descending."""
    return (not row["drifted"], -strength(row), row["status"] != "ok")


# ------------------------------------------------------------------ HTML
def svg_histogram(hist: dict | None, width: int = 120, height: int = 28) -> str:
    """Tiny inline SVG of the shares per bin: categories as side-by-side reference (blue) and
    current (orange) bars with a gap between categories; bins as a blue area and an orange step line."""
    if not hist:
        return ""
    ref = np.asarray(hist["ref"], dtype=float)
    cur = np.asarray(hist["cur"], dtype=float)
    ref = ref / ref.sum() if ref.sum() else ref
    cur = cur / cur.sum() if cur.sum() else cur
    top = max(float(ref.max(initial=0)), float(cur.max(initial=0)), 1e-12)
    n = len(ref)
    step = width / max(n, 1)
    ys = lambda v: height - v / top * (height - 2)  # noqa: E731
    parts = [f'<svg width="{width}" height="{height}" style="display:block" xmlns="http://www.w3.org/2000/svg">']
    if hist.get("kind") == "values":
        gap = min(step * 0.2, 6.0)
        w = max((step - gap) / 2, 0.5)
        for vals, color, off in ((ref, REF_COLOR, gap / 2), (cur, CUR_COLOR, gap / 2 + w)):
            bars = [
                f"M{i * step + off:.1f} {height}V{ys(vals[i]):.1f}h{w:.1f}V{height}z" for i in range(n) if vals[i] > 0
            ]
            parts.append(f'<path d="{"".join(bars)}" fill="{color}"/>')
    else:
        for vals, color, fill in ((ref, REF_COLOR, True), (cur, CUR_COLOR, False)):
            pts = "".join(f"H{i * step:.1f}V{ys(vals[i]):.1f}" for i in range(n))
            d = f"M0 {height}{pts}H{width}V{height}" + ("z" if fill else "")
            style = f'fill="{color}" fill-opacity="0.45" stroke="{color}"' if fill else f'fill="none" stroke="{color}"'
            parts.append(f'<path d="{d}" {style} stroke-width="1.2"/>')
    parts.append("</svg>")
    return "".join(parts)


def legend_html() -> str:
    sw = "display:inline-block;width:10px;height:10px;margin:0 3px 0 8px;vertical-align:-1px"
    return (
        f'<div style="font-family:sans-serif;font-size:11px;color:#555;line-height:1.4;margin:2px 0">'
        f'<span style="{sw};margin-left:0;background:{REF_COLOR}"></span>reference'
        f'<span style="{sw};background:{CUR_COLOR}"></span>current (share of rows per bin or value)</div>'
    )


def header_html(report) -> str:
    verdict = "Dataset drift detected" if report.dataset_drift else "No dataset drift"
    color = DRIFT_COLOR if report.dataset_drift else OK_COLOR
    warn = "".join(f'<div style="color:#b36b00">⚠ {html.escape(w)}</div>' for w in report.warnings)
    ref = f"reference: {html.escape(str(report.reference_label))} ({report.reference_kind}, {report.reference_rows} rows)"
    if getattr(report, "reference_note", None):
        ref += f" · {html.escape(report.reference_note)}"
    sketch = ""
    if uses_sketch(report):
        sketch = "<br>numerical columns of the reference are quantile sketches: their results are approximate"
    return (
        f'<div style="font-family:sans-serif;margin-bottom:4px;line-height:1.45">'
        f'<b style="font-size:15px">{report.n_drifted} of {report.n_columns} columns drifted</b> '
        f'({report.share_drifted:.0%}; dataset drift when ≥ {report.drift_share:.0%}) — '
        f'<b style="color:{color};white-space:nowrap">{verdict}</b><br>'
        f'<span style="color:#555;font-size:12px">{ref} · '
        f"current: {report.current_rows} rows{sketch}</span>"
        f"{warn}</div>"
    )


def _optional_columns(report) -> dict[str, bool]:
    """Which optional table columns carry information for at least one row of the report."""
    rows = report.rows
    return {
        "missing": any((r["ref_missing_share"] or 0) > 0 or (r["cur_missing_share"] or 0) > 0 for r in rows),
        "unseen": any(r.get("unseen_categories") for r in rows),
        "note": any(row_notes(r) for r in rows),
    }


def table_html(report, rows: list[dict] | None = None, with_svg: bool = True, max_height: int | None = 420) -> str:
    """The per-column table in a scrolling box (horizontal scroll when narrow, vertical
    beyond ``max_height`` px, sticky header). Columns empty for every row are left out."""
    rows = report.rows if rows is None else rows
    show = _optional_columns(report)
    head = ["column", "type", "test", "p-value / distance", "threshold", "status"]
    if with_svg:
        head.append("reference vs current")
    head += [h for h, k in (("missing ref → cur", "missing"), ("unseen", "unseen"), ("note", "note")) if show[k]]
    th = "".join(
        f'<th style="{_CELL}{_NOWRAP}text-align:left;position:sticky;top:0;background:#fff;'
        f'border-bottom:1px solid #999;z-index:1">{h}</th>'
        for h in head
    )
    body = []
    for r in rows:
        hist = report.histograms.get(r["column"])
        test = TEST_NAMES.get(r["test"], r["test"]) if r["test"] else "–"
        if r.get("severity"):
            test += f" ({r['severity']})"
        cells = [
            f"<b>{html.escape(str(r['column']))}</b>",
            html.escape(type_label(r, hist)),
            html.escape(test),
            html.escape(score_text(r)),
            html.escape(threshold_text(r)),
            status_badge(r),
        ]
        if with_svg:
            cells.append(svg_histogram(hist))
        if show["missing"]:
            cells.append(f"{share(r['ref_missing_share'])} → {share(r['cur_missing_share'])}")
        if show["unseen"]:
            unseen = r.get("unseen_categories") or []
            cells.append(f"{len(unseen)} ({r['unseen_share']:.1%})" if unseen else "–")
        tds = "".join(f'<td style="{_CELL}{_NOWRAP}">{c}</td>' for c in cells)
        if show["note"]:
            note = html.escape("; ".join(row_notes(r)))
            tds += f'<td style="{_CELL}color:#666;font-size:11px;min-width:180px">{note}</td>'
        bg = "#fdecea" if r["drifted"] else ""
        body.append(f'<tr style="background:{bg};border-bottom:1px solid #eee">{tds}</tr>')
    cap = f"max-height:{max_height}px;" if max_height else ""
    return (
        f'<div class="mlops-drift-table" style="overflow:auto;{cap}width:fit-content;max-width:100%">'
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:12px;line-height:1.35">'
        f'<thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def report_html(report) -> str:
    """Self-contained static HTML (no JavaScript): header, legend and table, most drifted first."""
    rows = sorted(report.rows, key=drift_order_key)
    return f'<div class="mlops-drift-report">{header_html(report)}{legend_html()}{table_html(report, rows)}</div>'


# ------------------------------------------------------------------ matplotlib
def plot_histogram(hist: dict, row: dict, ax=None):
    """Reference vs current shares on shared bins (step outlines, reference filled);
    side-by-side bars per value for categories and numbers with few values."""
    from matplotlib.figure import Figure

    fig = None
    if ax is None:
        fig = Figure(figsize=(5.6, 3.3), dpi=90)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    ref = np.asarray(hist["ref"], dtype=float)
    cur = np.asarray(hist["cur"], dtype=float)
    ref_s = ref / ref.sum() if ref.sum() else ref
    cur_s = cur / cur.sum() if cur.sum() else cur
    if hist["kind"] == "bins":
        edges = np.asarray(hist["edges"], dtype=float)
        from matplotlib.colors import to_rgba

        ax.stairs(ref_s, edges, fill=True, facecolor=to_rgba(REF_COLOR, 0.35), edgecolor=REF_COLOR,
                  linewidth=1.5, label="reference")  # fmt: skip
        ax.stairs(cur_s, edges, color=CUR_COLOR, linewidth=2.2, label="current")
        ax.set_xlim(edges[0], edges[-1])
        if hist.get("datetime"):
            from matplotlib.ticker import FuncFormatter

            ax.xaxis.set_major_formatter(
                FuncFormatter(lambda x, _pos: str(pd.Timestamp(x, unit="s").date()))
            )
            for lab in ax.get_xticklabels():
                lab.set_rotation(30)
        if hist.get("clipped"):
            ax.text(0.99, 0.80, "outliers in edge bins", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    else:
        x = np.arange(len(ref_s))
        ax.bar(x - 0.2, ref_s, width=0.38, color=REF_COLOR, label="reference")
        ax.bar(x + 0.2, cur_s, width=0.38, color=CUR_COLOR, label="current")
        labels = [lab if len(lab) <= 14 else lab[:13] + "…" for lab in hist["labels"]]
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center")
        ax.set_xlim(-0.6, len(x) - 0.4)
    ax.set_ylim(0, max(float(ref_s.max(initial=0)), float(cur_s.max(initial=0)), 1e-12) * 1.15)
    ax.set_ylabel("share of rows")
    ax.set_xlabel(type_label(row, hist), fontsize=8, color="#555")
    verdict = "DRIFT" if row["drifted"] else "no drift"
    score = score_title(row)
    ax.set_title(f"{row['column']}: {verdict}" + (f"\n{score}" if score else ""), fontsize=9.5)
    ax.legend(fontsize=8, loc="upper right", frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
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
