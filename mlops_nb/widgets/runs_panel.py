"""RunsPanel: recorded runs, a page at a time from SQL, with search, sort, charts and a comparison view.

Columns are compact (short id, name, status, when, duration, metrics first,
then only the params that differ among the shown runs).  Below the table, the
charts of every run the filter matches (metric vs param, parallel
coordinates, the best runs, stepped metrics: :mod:`mlops_nb.charts`, the
same charts the sidebar draws).  Selecting runs shows them side by side:
params with differences highlighted, metric bars and stepped metrics as
lines.  Outside a live kernel the panel renders as static HTML (the current
page).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..charts.display import show_charts
from ..errors import MlopsError, SearchError
from ..report import number_text, when_text
from ..search import RunPage, count_runs, metric_keys, search_runs
from .fallback import StaticFallback
from .spool_note import show_spool_note

_CSS = """<style>
.mlops-runs table{border-collapse:collapse;font-size:12px}
.mlops-runs th,.mlops-runs td{padding:2px 8px;border-bottom:1px solid var(--jp-border-color2,#ddd);text-align:left;white-space:nowrap}
.mlops-runs th{font-weight:600}.mlops-runs td.num{text-align:right;font-variant-numeric:tabular-nums}
.mlops-runs .diff{background:var(--jp-warn-color3,#fff3cd)}
.mlops-runs .failed{color:var(--jp-error-color0,#b00)}.mlops-runs .warn{color:var(--jp-warn-color0,#b60)}
</style>"""
PAGE_SIZE = 25
NEWEST = "start_time desc"


class RunsPanel(StaticFallback):
    """Interactive runs table; ``panel.widget`` is the ipywidgets container.

    Driven from code as from the screen: ``filter.value`` (search grammar; applied when
    set, or with ``apply_button.click()``), ``sort.value`` (``metrics.accuracy desc``…),
    ``next_button`` / ``prev_button``, ``selection.value`` (run ids) then
    ``compare_button.click()``.  ``panel.df`` is the shown page as a DataFrame.

    Parameters
    ----------
    filter : str, optional
        Run search filter (see :func:`mlops_nb.search_runs`).
    order_by : str or list of str, optional
        E.g. ``"metrics.accuracy desc"``; default newest first.
    project : str, optional
        Default the current project; ``"*"`` for every project.
    page_size : int
        Runs per page: only one page is read from the store at a time.
    strict : bool
        Raise :class:`~mlops_nb.errors.SearchError` for a bad initial filter (the magic
        reports it as a usage error) instead of showing it in the panel.
    """

    def __init__(self, *, filter: str | None = None, order_by: str | list[str] | None = None,  # noqa: A002
                 project: str | None = None, page_size: int = PAGE_SIZE, store=None, strict: bool = False) -> None:  # fmt: skip
        self.store, self.project, self.page_size = store, project, page_size
        if isinstance(order_by, str):
            order_by = [order_by]
        order = ", ".join(order_by or []) or NEWEST
        self.filter = W.Text(value=filter or "", placeholder="metrics.accuracy > 0.9 and status = 'finished'",
                             continuous_update=False, layout=W.Layout(width="420px"))  # fmt: skip
        self.sort = W.Dropdown(options=self._sort_options(order), value=order, description="sort",
                               layout=W.Layout(width="300px"), style={"description_width": "32px"})  # fmt: skip
        self.apply_button = W.Button(description="Search", icon="search", button_style="primary", layout=W.Layout(width="100px"))
        self.prev_button = W.Button(description="", icon="chevron-left", tooltip="Previous page", layout=W.Layout(width="40px"))
        self.next_button = W.Button(description="", icon="chevron-right", tooltip="Next page", layout=W.Layout(width="40px"))
        self.spool_note = W.HTML()  # records of this machine not in the registry yet, while there are any
        self.status = W.HTML()
        self.table = W.HTML(layout=W.Layout(overflow="auto", width="100%"))
        self.selection = W.SelectMultiple(rows=6, description="", layout=W.Layout(width="420px"))
        self.compare_button = W.Button(description="Compare selected", icon="columns")
        self.comparison = W.HTML(layout=W.Layout(overflow="auto", width="100%"))
        self.comparison_out = W.Output(layout=W.Layout(width="100%"))
        self.x_axis = W.Dropdown(description="x", layout=W.Layout(width="220px"), style={"description_width": "16px"})
        self.y_axis = W.Dropdown(description="y", layout=W.Layout(width="220px"), style={"description_width": "16px"})
        self.charts_out = W.Output(layout=W.Layout(width="100%"))
        self.charts: list[dict[str, Any]] = []  # what charts_out shows: mlops_nb.charts dicts
        self.comparison_charts: list[dict[str, Any]] = []
        self.apply_button.on_click(lambda _b: self.search())
        self.filter.observe(lambda _c: self.search(), names="value")
        self.sort.observe(lambda _c: self.search(), names="value")
        self.next_button.on_click(lambda _b: self._move(+1))
        self.prev_button.on_click(lambda _b: self._move(-1))
        self.compare_button.on_click(lambda _b: self.compare())
        self.x_axis.observe(lambda _c: self._quiet or self.draw(), names="value")
        self.y_axis.observe(lambda _c: self._quiet or self.draw(), names="value")
        self._quiet = False
        self.widget = W.VBox([
            W.HTML(_CSS + "<b>Runs</b>"),
            W.HBox([self.filter, self.apply_button, self.sort, self.prev_button, self.next_button]),
            self.spool_note, self.status, self.table,
            W.HTML("<b>Charts</b> <span style='color:#666;font-size:11px'>of every run the filter matches</span>"),
            W.HBox([self.x_axis, self.y_axis]), self.charts_out,
            W.HBox([self.selection, self.compare_button]),
            self.comparison, self.comparison_out,
        ])  # fmt: skip
        self.widget.add_class("mlops-runs")
        self._tokens: list[str | None] = [None]
        self.page = RunPage([], None)
        self.total = 0
        self.error: str | None = None
        self.search()
        if strict and self.error:
            raise SearchError(self.error, filter=self.filter.value)

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

    def _order(self) -> list[str] | None:
        return [o.strip() for o in (self.sort.value or "").split(",") if o.strip()] or None

    def _load(self) -> RunsPanel:
        show_spool_note(self.spool_note, self.store)  # first: a registry that is down makes the search fail
        text = self.filter.value.strip() or None
        try:
            self.page = search_runs(text, order_by=self._order(), max_results=self.page_size,
                                    page_token=self._tokens[-1], project=self.project, store=self.store)  # fmt: skip
            self.total = count_runs(text, project=self.project, store=self.store)
        except MlopsError as exc:  # a bad filter is shown, not raised: the user is typing
            self.error = str(exc)
            self.status.value = f"<span class='failed'>✗ {html.escape(self.error)}</span>"
            return self
        self.error = None
        first = (len(self._tokens) - 1) * self.page_size
        shown = f"{first + 1}–{first + len(self.page)}" if self.page else "0"
        self.status.value = f"runs {shown} of {self.total}"
        self.table.value = runs_table(self.page)
        self.selection.options = [(_label(r), r["id"]) for r in self.page]
        self.prev_button.disabled = len(self._tokens) == 1
        self.next_button.disabled = not self.page.next_page_token
        if len(self._tokens) == 1:  # a new search: the charts follow the filter (paging leaves them)
            self.draw()
        return self

    def draw(self) -> RunsPanel:
        """Redraw the charts for the current filter and the chosen axes."""
        from ..charts import runs_charts
        from ..store import get_store

        answer = runs_charts(self.store or get_store(), filter=self.filter.value.strip() or None,
                             x=self.x_axis.value, y=self.y_axis.value, project=self.project)  # fmt: skip
        self._quiet = True  # setting the options must not redraw once per dropdown
        try:
            self.x_axis.options = answer["axes"]["params"]
            self.x_axis.value = answer["x"]
            self.y_axis.options = answer["axes"]["metrics"]
            self.y_axis.value = answer["y"]
        finally:
            self._quiet = False
        self.charts = answer["charts"]
        show_charts(self.charts_out, self.charts)
        return self

    def _sort_options(self, current: str) -> list[str]:
        keys = metric_keys(project=self.project, store=self.store)
        options = [NEWEST, "start_time asc", "duration desc", "name asc"]
        options += [f"metrics.{k} {d}" for k in keys for d in ("desc", "asc")]
        return options if current in options else [current, *options]

    @property
    def shown_ids(self) -> list[str]:
        """Ids of the runs on the shown page, in order."""
        return [r["id"] for r in self.page]

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
            self.comparison_charts = []
            show_charts(self.comparison_out, [])
            return self
        from ..charts.runs import comparison
        from ..store import get_store

        store = self.store or get_store()
        self.comparison.value = comparison_table(chosen)
        self.comparison_charts = comparison(chosen, {r["id"]: store.get_run(r["id"])["metric_history"] for r in chosen})
        show_charts(self.comparison_out, self.comparison_charts)
        return self

    # ------------------------------------------------------------------ display
    def static_html(self) -> str:
        """The shown page as plain HTML (no kernel needed)."""
        return _CSS + f"<div class='mlops-runs'><b>Runs</b> · {self.status.value}{self.spool_note.value}{runs_table(self.page)}</div>"

    def __repr__(self) -> str:
        return f"RunsPanel({len(self.page)} of {self.total} runs shown, filter={self.filter.value!r})"


def _label(run: dict[str, Any]) -> str:
    warn = " ⚠" if run.get("warnings") else ""
    return f"{run['id'][:8]} {run['name'] or ''} {run['status']}{warn}"


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
        cells = [f"<code>{r['id'][:8]}</code>{warn}", html.escape(r["name"] or ""), status, when_text(r["start_time"]),
                 f"{r['duration']:.2f}s" if r.get("duration") is not None else ""]  # fmt: skip
        cells += [number_text(r["metrics"][k]) if r["metrics"].get(k) is not None else "" for k in metrics]
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

