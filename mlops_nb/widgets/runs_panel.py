"""RunsPanel: recorded runs, a page at a time from SQL, with search, sort and a comparison view.

Columns are compact (short id, name, status, when, duration, metrics first,
then only the params that differ among the shown runs).  Selecting runs shows
them side by side: params with differences highlighted, metric bars and
stepped metrics as lines.  Outside a live kernel the panel renders as static
HTML (the current page).
"""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as W

from ..errors import MlopsError
from ..registry.tables import when
from ..search import RunPage, count_runs, search_runs

_CSS = """<style>
.mlops-runs table{border-collapse:collapse;font-size:12px}
.mlops-runs th,.mlops-runs td{padding:2px 8px;border-bottom:1px solid var(--jp-border-color2,#ddd);text-align:left;white-space:nowrap}
.mlops-runs th{font-weight:600}.mlops-runs td.num{text-align:right;font-variant-numeric:tabular-nums}
.mlops-runs .diff{background:var(--jp-warn-color3,#fff3cd)}
.mlops-runs .failed{color:var(--jp-error-color0,#b00)}.mlops-runs .warn{color:var(--jp-warn-color0,#b60)}
</style>"""
PAGE_SIZE = 25


class RunsPanel:
    """Interactive runs table; ``panel.widget`` is the ipywidgets container.

    Driven from code as from the screen: ``filter.value`` (search grammar) then
    ``apply_button.click()``; ``sort.value`` (``metrics.accuracy desc``…);
    ``next_button`` / ``prev_button``; ``selection.value`` (run ids) then
    ``compare_button.click()``.  ``panel.df`` is the shown page as a DataFrame.
    """

    def __init__(self, *, filter: str | None = None, order_by: str | None = None, project: str | None = None,  # noqa: A002
                 page_size: int = PAGE_SIZE, store=None) -> None:  # fmt: skip
        self.store, self.project, self.page_size = store, project, page_size
        self.filter = W.Text(value=filter or "", placeholder="metrics.accuracy > 0.9 and status = 'finished'",
                             layout=W.Layout(width="420px"))  # fmt: skip
        self.sort = W.Combobox(value=order_by or "", placeholder="sort: start_time desc, metrics.KEY desc…",
                               layout=W.Layout(width="260px"))  # fmt: skip
        self.apply_button = W.Button(description="Search", icon="search", button_style="primary", layout=W.Layout(width="100px"))
        self.prev_button = W.Button(description="", icon="chevron-left", layout=W.Layout(width="40px"))
        self.next_button = W.Button(description="", icon="chevron-right", layout=W.Layout(width="40px"))
        self.status = W.HTML()
        self.table = W.HTML(layout=W.Layout(overflow="auto", width="100%"))
        self.selection = W.SelectMultiple(rows=6, description="", layout=W.Layout(width="100%"))
        self.compare_button = W.Button(description="Compare selected", icon="columns")
        self.comparison = W.HTML(layout=W.Layout(overflow="auto", width="100%"))
        self.chart = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.apply_button.on_click(lambda _b: self.search())
        self.filter.on_submit(lambda _w: self.search())
        self.sort.observe(lambda _c: self.search(), names="value")
        self.next_button.on_click(lambda _b: self._move(+1))
        self.prev_button.on_click(lambda _b: self._move(-1))
        self.compare_button.on_click(lambda _b: self.compare())
        self.widget = W.VBox([
            W.HTML(_CSS + "<b>Runs</b>"),
            W.HBox([self.filter, self.sort, self.apply_button, self.prev_button, self.next_button]),
            self.status, self.table,
            W.HBox([self.selection, self.compare_button]),
            self.comparison, self.chart,
        ])  # fmt: skip
        self.widget.add_class("mlops-runs")
        self._tokens: list[str | None] = [None]
        self.page = RunPage([], None)
        self.search()

    # ------------------------------------------------------------------ data
    def search(self) -> RunsPanel:
        """Run the filter and sort from the first page."""
        self._tokens = [None]
        return self._load()

    def _move(self, step: int) -> None:
        if step > 0 and self.page.next_page_token:
            self._tokens.append(self.page.next_page_token)
        elif step < 0 and len(self._tokens) > 1:
            self._tokens.pop()
        else:
            return
        self._load()

    def _load(self) -> RunsPanel:
        order = [o.strip() for o in (self.sort.value or "").split(",") if o.strip()] or None
        try:
            self.page = search_runs(self.filter.value or None, order_by=order, max_results=self.page_size,
                                    page_token=self._tokens[-1], project=self.project, store=self.store)  # fmt: skip
            total = count_runs(self.filter.value or None, project=self.project, store=self.store)
        except MlopsError as exc:
            self.status.value = f"<span class='failed'>✗ {html.escape(str(exc))}</span>"
            return self
        first = (len(self._tokens) - 1) * self.page_size
        shown = f"{first + 1}–{first + len(self.page)}" if self.page else "0"
        self.status.value = f"runs {shown} of {total}"
        self.table.value = runs_table(self.page)
        self.sort.options = self._sort_options()
        self.selection.options = [(f"{r['id'][:8]} {r['name'] or ''}", r["id"]) for r in self.page]
        self.prev_button.disabled = len(self._tokens) == 1
        self.next_button.disabled = not self.page.next_page_token
        return self

    def _sort_options(self) -> list[str]:
        keys = sorted({k for r in self.page for k in r["metrics"]})
        return ["start_time desc", "duration desc", *(f"metrics.{k} desc" for k in keys), *(f"metrics.{k} asc" for k in keys)]

    @property
    def df(self):
        """The shown page as a DataFrame (as :func:`mlops_nb.runs` returns)."""
        return self.page.df

    # ------------------------------------------------------------------ comparison
    def compare(self, run_ids: list[str] | None = None) -> RunsPanel:
        """Show the selected runs side by side."""
        ids = list(run_ids or self.selection.value)
        chosen = [r for r in self.page if r["id"] in ids]
        if len(chosen) < 2:
            self.comparison.value = "<i>Select two or more runs to compare.</i>"
            self.chart.value = b""
            return self
        self.comparison.value = comparison_table(chosen)
        self.chart.value = _comparison_png(chosen, self.store)
        return self

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = _CSS + f"<div class='mlops-runs'><b>Runs</b> ({html.escape(self.status.value)}){runs_table(self.page)}</div>"
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"RunsPanel({len(self.page)} runs shown, filter={self.filter.value!r})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def differing_params(runs: list[dict[str, Any]]) -> list[str]:
    """Param keys whose values are not the same in every run."""
    keys = sorted({k for r in runs for k in r["params"]})
    return [k for k in keys if len({repr(r["params"].get(k)) for r in runs}) > 1]


def runs_table(runs: list[dict[str, Any]]) -> str:
    """Compact HTML table: id, name, status, when, duration, metrics, params that differ."""
    if not runs:
        return "<p><i>No runs match.</i></p>"
    metrics = sorted({k for r in runs for k in r["metrics"]})
    params = differing_params(runs) if len(runs) > 1 else []
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["run", "name", "status", "when", "duration", *metrics, *params])
    rows = []
    for r in runs:
        warn = f" <span class='warn' title='{html.escape('; '.join(str(w.get('message')) for w in r.get('warnings') or []))}'>⚠</span>" if r.get("warnings") else ""
        status = f"<span class='{'failed' if r['status'] == 'failed' else ''}'>{r['status']}</span>"
        cells = [f"<code>{r['id'][:8]}</code>{warn}", html.escape(r["name"] or ""), status, when(r["start_time"]),
                 f"{r['duration']:.2f}s" if r.get("duration") is not None else ""]  # fmt: skip
        cells += [f"{r['metrics'][k]:.4g}" if k in r["metrics"] else "" for k in metrics]
        cells += [_fmt(r["params"][k]) if k in r["params"] else "" for k in params]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def comparison_table(runs: list[dict[str, Any]]) -> str:
    """Params and metrics side by side; rows whose values differ are highlighted."""
    head = "<th></th>" + "".join(f"<th>{r['id'][:8]} {html.escape(r['name'] or '')}</th>" for r in runs)
    rows = []
    for section in ("params", "metrics"):
        for key in sorted({k for r in runs for k in r[section]}):
            values = [r[section].get(key) for r in runs]
            differs = len({repr(v) for v in values}) > 1
            cells = "".join(f"<td class='{'diff' if differs else ''}'>{'' if v is None else _fmt(v)}</td>" for v in values)
            rows.append(f"<tr><th>{section[:-1]} {html.escape(key)}</th>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _comparison_png(runs: list[dict[str, Any]], store) -> bytes:
    """Metric bars per run, and stepped metrics as lines."""
    from matplotlib.figure import Figure

    from ..store import get_store

    store = store or get_store()
    metrics = sorted({k for r in runs for k in r["metrics"]})
    histories = {r["id"]: store.get_run(r["id"])["metric_history"] for r in runs}
    stepped = sorted({h["key"] for hist in histories.values() for h in hist if h["step"] is not None})
    fig = Figure(figsize=(9, 3 if not stepped else 5.5))
    n_rows = 2 if stepped else 1
    ax = fig.add_subplot(n_rows, 1, 1)
    width = 0.8 / max(1, len(runs))
    for i, r in enumerate(runs):
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [r["metrics"].get(k, 0.0) for k in metrics], width=width, label=f"{r['id'][:8]} {r['name'] or ''}")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics, fontsize=8)
    ax.legend(fontsize=7)
    if stepped:
        ax2 = fig.add_subplot(2, 1, 2)
        for r in runs:
            for key in stepped:
                points = [(h["step"], h["value"]) for h in histories[r["id"]] if h["key"] == key and h["step"] is not None]
                if points:
                    ax2.plot(*zip(*points), marker=".", label=f"{r['id'][:8]} {key}")
        ax2.set_xlabel("step")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
