"""DriftPanel: an ipywidgets view of a :class:`~mlops_nb.drift.DriftReport`.

Header with the verdict, a per-column table (sortable, "drifted only"
filter, coloured status), and for a chosen column the reference and current
histograms overlaid on shared bins (bars for categories). Only aggregated
counts are drawn. Outside a live kernel the panel renders as static HTML.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from mlops_nb.drift.render import figure_png, header_html, plot_histogram, report_html, table_html

SORT_KEYS = {
    "original order": None,
    "drifted first": lambda r: (not r["drifted"], _num(r["score"])),
    "column": lambda r: str(r["column"]).lower(),
    "score": lambda r: _num(r["score"]),
    "type": lambda r: (r["type"], str(r["column"])),
    "test": lambda r: (str(r["test"]), str(r["column"])),
    "missing change": lambda r: -abs(_num(r["missing_change"], 0.0)),
}


def _num(value: Any, default: float = float("inf")) -> float:
    return default if value is None else float(value)


class DriftPanel:
    """Interactive drift view; ``panel.widget`` is the ipywidgets container.

    Programmatic control (used by tests, handy in scripts):
    :meth:`sort_by`, :meth:`set_drifted_only`, :meth:`select`,
    :attr:`visible_columns`.
    """

    def __init__(self, report) -> None:
        self.report = report
        self.header = W.HTML(header_html(report))
        self.sort_key = W.Dropdown(options=list(SORT_KEYS), value="drifted first", description="Sort by",
                                   layout=W.Layout(width="240px"))  # fmt: skip
        self.descending = W.ToggleButton(value=False, description="descending", icon="sort",
                                         layout=W.Layout(width="120px"))  # fmt: skip
        self.drifted_only = W.Checkbox(value=False, description="drifted only", indent=False,
                                       layout=W.Layout(width="120px"))  # fmt: skip
        self.table = W.HTML()
        self.column = W.Dropdown(description="Column", layout=W.Layout(width="340px"))
        self.image = W.Image(format="png", layout=W.Layout(max_width="640px"))
        self.message = W.HTML()
        self._quiet = False
        self._shown: str | None = None
        for control in (self.sort_key, self.descending, self.drifted_only):
            control.observe(self._refresh, names="value")
        self.column.observe(self._show_column, names="value")
        controls = W.HBox([self.sort_key, self.descending, self.drifted_only])
        self.widget = W.VBox(
            [self.header, controls, self.table, W.HBox([self.column]), self.message, self.image],
            layout=W.Layout(width="100%"),
        )
        self._refresh()

    # ------------------------------------------------------------------ state
    def _rows(self) -> list[dict]:
        rows = list(self.report.rows)
        if self.drifted_only.value:
            rows = [r for r in rows if r["drifted"]]
        key = SORT_KEYS[self.sort_key.value]
        if key is not None:
            rows = sorted(rows, key=key, reverse=self.descending.value)
        elif self.descending.value:
            rows = rows[::-1]
        return rows

    @property
    def visible_columns(self) -> list[str]:
        """Column names in the table as currently filtered and sorted."""
        return [r["column"] for r in self._rows()]

    def _refresh(self, _change: Any = None) -> None:
        rows = self._rows()
        if rows:
            self.table.value = table_html(self.report, rows)
        else:
            self.table.value = "<i>No drifted columns.</i>" if self.drifted_only.value else "<i>No columns.</i>"
        names = [r["column"] for r in rows]
        current = self.column.value
        if tuple(names) != tuple(self.column.options):
            self._quiet = True
            try:
                self.column.options = names
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
        if name is None:
            self.image.value = b""
            self.message.value = ""
            return
        row = self.report[name]
        hist = self.report.histograms.get(name)
        if hist is None:
            self.image.value = b""
            self.message.value = f"<i>{name}: no histogram ({row['status']}).</i>"
            return
        self.message.value = ""
        self.image.value = figure_png(plot_histogram(hist, row))

    # ------------------------------------------------------------------ control
    def sort_by(self, key: str, descending: bool = False) -> "DriftPanel":
        """Sort the table by one of :data:`SORT_KEYS`."""
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
        names = list(self.column.options)
        key = column if column in names else str(column)
        if key not in names:
            raise ValueError(f"Column {column!r} is not in the table (filtered: drifted only={self.drifted_only.value}).")
        self.column.value = key
        return self

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle = dict(bundle)
        bundle["text/html"] = report_html(self.report)
        bundle["text/plain"] = repr(self.report)
        return bundle

    def __repr__(self) -> str:
        return f"DriftPanel({self.report.summary()})"
