"""DriftPanel: an ipywidgets view of a :class:`~mlops_nb.drift.DriftReport`.

Header with the verdict and a colour key, sort/filter controls, a column
list with, beside it, the reference and current histograms of the chosen
column on shared bins (bars for categories), and the per-column table
(sortable, "drifted only" filter, coloured status; scrolls when long or
narrow). Only aggregated counts are
drawn. Outside a live kernel (nbconvert, GitHub) the panel renders as static
HTML.

After re-opening a saved notebook, JupyterLab shows "Error displaying widget:
model not found" for the panel: widgets need the live kernel. Re-run the
cell, or enable JupyterLab "Settings → Save Widget State Automatically" to
keep the last view in the notebook.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from mlops_nb.drift.render import drift_order_key, header_html, legend_html, report_html, table_html

from ..charts.display import show_charts
from ..charts.drift import column_chart
from .fallback import StaticFallback

#: Sort options of the panel: name -> row key (None keeps the report's column order).
SORT_KEYS = {
    "most drifted first": drift_order_key,
    "column order": None,
    "name": lambda r: str(r["column"]).lower(),
    "type": lambda r: (r["type"], str(r["column"]).lower()),
    "test": lambda r: (str(r["test"]), str(r["column"]).lower()),
    "missing change": lambda r: -abs(_num(r["missing_change"], 0.0)),
}
#: Former option names, still accepted by :meth:`DriftPanel.sort_by`.
SORT_ALIASES = {"drifted first": "most drifted first", "score": "most drifted first",
                "original order": "column order", "column": "name"}  # fmt: skip
TABLE_HEIGHT = 420  # px; the table scrolls beyond this


def _num(value: Any, default: float = float("inf")) -> float:
    return default if value is None else float(value)


class DriftPanel(StaticFallback):
    """Interactive drift view; ``panel.widget`` is the ipywidgets container.

    Programmatic control (used by tests, handy in scripts):
    :meth:`sort_by`, :meth:`set_drifted_only`, :meth:`select`,
    :attr:`visible_columns`.

    The panel needs the live kernel: after re-opening a saved notebook,
    re-run the cell (or enable JupyterLab
    "Settings → Save Widget State Automatically"); nbconvert and GitHub
    show its static HTML.
    """

    def __init__(self, report) -> None:
        self.report = report
        self.header = W.HTML(header_html(report) + legend_html())
        self.sort_key = W.Dropdown(options=list(SORT_KEYS), value="most drifted first", description="Sort",
                                   layout=W.Layout(width="230px"), style={"description_width": "36px"})  # fmt: skip
        self.descending = W.ToggleButton(value=False, description="reverse", icon="sort",
                                         tooltip="Reverse the sort order", layout=W.Layout(width="100px"))  # fmt: skip
        self.drifted_only = W.ToggleButton(value=False, description="drifted only", icon="filter",
                                           tooltip="Show drifted columns only", layout=W.Layout(width="120px"))  # fmt: skip
        self.table = W.HTML(layout=W.Layout(overflow="auto", width="100%", min_width="0"))
        self.column = W.Select(description="", rows=14, layout=W.Layout(width="calc(100% - 6px)"))
        self.chart_out = W.Output(layout=W.Layout(width="100%"))
        self.chart: dict[str, Any] | None = None  # the shown column's chart (mlops_nb.charts), drawn as the sidebar draws it
        self.message = W.HTML()
        self._quiet = False
        self._shown: str | None = None
        for control in (self.sort_key, self.descending, self.drifted_only):
            control.observe(self._refresh, names="value")
        for toggle in (self.descending, self.drifted_only):
            toggle.observe(self._style_toggle, names="value")
        self.column.observe(self._show_column, names="value")
        controls = W.HBox([self.sort_key, self.descending, self.drifted_only],
                          layout=W.Layout(flex_flow="row wrap"))  # fmt: skip
        chooser = W.HTML('<span style="font-family:sans-serif;font-size:12px;line-height:1.4">'
                         "Column to plot (● drifted):</span>")  # fmt: skip
        picker = W.VBox([chooser, self.column],
                        layout=W.Layout(flex="0 1 280px", min_width="200px", margin="0 12px 0 0"))  # fmt: skip
        chart = W.VBox([self.message, self.chart_out], layout=W.Layout(flex="0 1 504px", min_width="260px"))
        # chart near the top, beside the column list; the table (height capped, scrolls) below
        plot_row = W.HBox([picker, chart], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.widget = W.VBox([self.header, controls, plot_row, self.table], layout=W.Layout(width="100%"))
        self._refresh()

    # ------------------------------------------------------------------ state
    def _rows(self) -> list[dict]:
        rows = list(self.report.rows)
        if self.drifted_only.value:
            rows = [r for r in rows if r["drifted"]]
        key = SORT_KEYS[self.sort_key.value]
        if key is not None:
            rows = sorted(rows, key=key)
        if self.descending.value:
            rows = rows[::-1]
        return rows

    @property
    def visible_columns(self) -> list[str]:
        """Column names in the table as currently filtered and sorted."""
        return [r["column"] for r in self._rows()]

    @staticmethod
    def _style_toggle(change: Any) -> None:
        change["owner"].button_style = "info" if change["new"] else ""

    def _refresh(self, _change: Any = None) -> None:
        rows = self._rows()
        if rows:
            self.table.value = table_html(self.report, rows, max_height=TABLE_HEIGHT)
        else:
            self.table.value = "<i>No drifted columns.</i>" if self.drifted_only.value else "<i>No columns.</i>"
        options = [(f"{'●' if r['drifted'] else '○'} {r['column']}", r["column"]) for r in rows]
        names = [value for _, value in options]
        current = self.column.value
        if tuple(options) != tuple(self.column.options):
            self._quiet = True
            try:
                self.column.options = options
                self.column.value = (current if current in names else names[0]) if names else None
            finally:
                self._quiet = False
        if self.column.value != self._shown:
            self._show_column()

    def _show_column(self, _change: Any = None) -> None:
        if self._quiet:
            return
        name = self.column.value
        self._shown = name
        row = self.report[name] if name is not None else None
        hist = self.report.histograms.get(name) if name is not None else None
        self.message.value = f"<i>{name}: no histogram ({row['status']}).</i>" if row is not None and hist is None else ""
        self.chart = column_chart(row, hist) if hist is not None else None
        show_charts(self.chart_out, [] if self.chart is None else [self.chart])

    # ------------------------------------------------------------------ control
    def sort_by(self, key: str, descending: bool = False) -> "DriftPanel":
        """Sort the table by one of :data:`SORT_KEYS`; ``descending`` reverses that order."""
        key = SORT_ALIASES.get(key, key)
        if key not in SORT_KEYS:
            raise ValueError(f"Unknown sort key {key!r}; use one of {list(SORT_KEYS)}.")
        self.descending.value = descending
        self.sort_key.value = key
        return self

    def set_drifted_only(self, value: bool = True) -> "DriftPanel":
        self.drifted_only.value = bool(value)
        return self

    def select(self, column) -> "DriftPanel":
        """Show the histograms of ``column``."""
        names = [value for _, value in self.column.options]
        key = column if column in names else str(column)
        if key not in names:
            raise ValueError(f"Column {column!r} is not in the table (filtered: drifted only={self.drifted_only.value}).")
        self.column.value = key
        return self

    # ------------------------------------------------------------------ display
    def static_html(self) -> str:
        return report_html(self.report)

    def plain_text(self) -> str:
        return repr(self.report)

    def __repr__(self) -> str:
        return f"DriftPanel({self.report.summary()})"
