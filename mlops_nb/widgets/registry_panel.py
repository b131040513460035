"""RegistryPanel: registered models → versions with aliases, metrics and training data; actions.

The buttons call the registry API (``promote``, ``approve``, ``rollback``,
``load_model``, ``lineage``), so the promotion policy and the audit trail
apply exactly as from code or the command line.  Outside a live kernel the
panel renders as static HTML (the models and their versions).
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..errors import MlopsError
from ..registry import approve, load_model, models, promote, rollback, versions
from ..registry.tables import metric_text, promotion_line
from ..report import when_text
from .fallback import StaticFallback
from .spool_note import show_spool_note

_CSS = """<style>
.mlops-reg table{border-collapse:collapse;font-size:12px}
.mlops-reg th,.mlops-reg td{padding:3px 8px;border-bottom:1px solid var(--jp-border-color2,#ddd);text-align:left;white-space:nowrap}
.mlops-reg th{font-weight:600}
.mlops-reg .alias{display:inline-block;padding:0 6px;margin-right:3px;border-radius:8px;background:var(--jp-brand-color3,#cde);color:var(--jp-ui-font-color0,#000)}
.mlops-reg .warn{color:var(--jp-warn-color0,#b60)}
.mlops-reg .ok{color:var(--jp-success-color0,#070)}.mlops-reg .bad{color:var(--jp-error-color0,#b00)}
</style>"""


class RegistryPanel(StaticFallback):
    """Interactive registry view; ``panel.widget`` is the ipywidgets container.

    Driven from code as from the screen: set ``model.value``, ``version.value``,
    ``alias.value`` and ``reason.value``, then ``promote_button.click()`` (or
    ``approve_button``, ``rollback_button``, ``load_button``, ``lineage_button``);
    ``message.value`` says what happened.
    """

    def __init__(self, name: str | None = None, *, store=None, shell=None) -> None:
        self.store = store
        self.shell = shell
        self.model = W.Select(description="", rows=8, layout=W.Layout(width="220px"))
        self.versions_html = W.HTML(layout=W.Layout(overflow="auto", width="100%"))
        self.version = W.Dropdown(description="version", layout=W.Layout(width="160px"), style={"description_width": "52px"})
        self.alias = W.Combobox(value="production", options=["staging", "production", "champion", "challenger"],
                                description="alias", layout=W.Layout(width="210px"), style={"description_width": "40px"})  # fmt: skip
        self.reason = W.Text(placeholder="reason (kept in the audit trail)", layout=W.Layout(width="260px"))
        self.request = W.Dropdown(description="request", layout=W.Layout(width="260px"), style={"description_width": "52px"})
        self.variable = W.Text(value="model", description="as", layout=W.Layout(width="150px"), style={"description_width": "22px"})
        self.promote_button = W.Button(description="Promote", icon="arrow-up", button_style="primary")
        self.approve_button = W.Button(description="Approve", icon="check")
        self.rollback_button = W.Button(description="Roll back", icon="undo", button_style="warning")
        self.load_button = W.Button(description="Load", icon="download", tooltip="Load the version into the notebook")
        self.lineage_button = W.Button(description="Lineage", icon="sitemap")
        self.refresh_button = W.Button(description="", icon="refresh", tooltip="Reload from the registry", layout=W.Layout(width="40px"))
        self.message = W.HTML()
        self.detail = W.HTML()
        self.alerts_html = W.HTML()
        self.spool_note = W.HTML()  # records of this machine not in the registry yet, while there are any
        self.model.observe(self._show_model, names="value")
        self.version.observe(self._show_detail, names="value")
        for button, action in (
            (self.promote_button, self._promote), (self.approve_button, self._approve),
            (self.rollback_button, self._rollback), (self.load_button, self._load),
            (self.lineage_button, self._lineage), (self.refresh_button, lambda _b: self.refresh()),
        ):  # fmt: skip
            button.on_click(action)
        actions = W.VBox([
            W.HBox([self.version, self.alias, self.reason]),
            W.HBox([self.promote_button, self.rollback_button, self.request, self.approve_button]),
            W.HBox([self.variable, self.load_button, self.lineage_button, self.refresh_button]),
        ])  # fmt: skip
        right = W.VBox([self.versions_html, self.alerts_html, actions, self.message, self.detail],
                       layout=W.Layout(width="100%", min_width="0"))  # fmt: skip
        self.widget = W.VBox([W.HTML(_CSS + "<b>Model registry</b>"), self.spool_note, W.HBox([self.model, right])])
        self.widget.add_class("mlops-reg")
        self.refresh(select=name)

    # ---------------------------------------------------------------- data
    def refresh(self, select: str | None = None) -> RegistryPanel:
        """Reload models, versions and pending requests from the registry."""
        show_spool_note(self.spool_note, self.store)  # first: a registry that is down makes the reads fail
        self._models = models(store=self.store)
        keep = select or self.model.value
        self.model.options = [(self._model_label(m), m.name) for m in self._models]
        names = [m.name for m in self._models]
        if keep in names:
            self.model.value = keep
        elif names:
            self.model.value = names[0]
        self._show_model()
        return self

    @staticmethod
    def _model_label(m) -> str:
        aliases = " ".join(f"@{a}" for a in m.aliases)
        return f"{m.name} (v{m.latest_version}) {aliases}".strip()

    def _show_model(self, _change: Any = None) -> None:
        name = self.model.value
        if not name:
            self.versions_html.value = "<i>No registered model yet: mlops_nb.register(model, name=...) or %mlops register VAR --name NAME.</i>"
            self.version.options, self.request.options = [], []
            return
        self._versions = versions(name, store=self.store)
        self.versions_html.value = versions_table(self._versions)
        keep = self.version.value
        self.version.options = [(f"v{v.version}", v.version) for v in self._versions]
        if keep in [v.version for v in self._versions]:
            self.version.value = keep
        store = self.store or _store()
        pending = store.list_promotion_requests(name)
        self.request.options = [(f"#{r['id']} v{r['version']}→@{r['alias']} by {r['requester']}", r["id"]) for r in pending]
        self.request.value = pending[0]["id"] if pending else None
        self.alerts_html.value = alerts_html(store, name)
        self._show_detail()

    def _show_detail(self, _change: Any = None) -> None:
        v = self._selected()
        if v is None:
            self.detail.value = ""
            return
        warnings = "".join(f"<div class='warn'>⚠ {html.escape(str(w.get('message') or w))}</div>" for w in v.warnings)
        params = ", ".join(f"{html.escape(str(k))}={html.escape(str(p))}" for k, p in list(v.params.items())[:12])
        self.detail.value = (
            f"<div><b>{html.escape(v.ref)}</b> {html.escape(v.class_name)} · digest <code>{v.digest[:16]}</code> · "
            f"run <code>{(v.run_id or 'none')[:8]}</code></div><div>params: {params or '—'}</div>{warnings}"
        )

    def _selected(self):
        number = self.version.value
        return next((v for v in getattr(self, "_versions", []) if v.version == number), None)

    # ---------------------------------------------------------------- actions
    def _run(self, action) -> None:
        try:
            text = action()
        except MlopsError as exc:
            self.message.value = f"<span class='bad'>✗ {html.escape(str(exc))}</span>"
            self._show_model()  # a refusal is audited; the listing may have changed too
            return
        self.message.value = f"<span class='ok'>✓ {html.escape(text)}</span>"
        self.refresh()

    def _promote(self, _button=None) -> None:
        name, number, alias = self.model.value, self.version.value, (self.alias.value or "").strip()
        self._run(lambda: promotion_line(promote(name, number, alias, reason=self.reason.value or None, store=self.store)))

    def _approve(self, _button=None) -> None:
        request_id = self.request.value
        if request_id is None:
            self.message.value = "<span class='bad'>✗ No pending promotion request for this model.</span>"
            return
        self._run(lambda: promotion_line(approve(request_id, comment=self.reason.value or None, store=self.store)))

    def _rollback(self, _button=None) -> None:
        name, alias = self.model.value, (self.alias.value or "").strip()
        self._run(lambda: promotion_line(rollback(name, alias, reason=self.reason.value or None, store=self.store)))

    def _load(self, _button=None) -> None:
        v = self._selected()
        var = (self.variable.value or "").strip()
        if v is None or not var.isidentifier():
            self.message.value = f"<span class='bad'>✗ Choose a version and a valid variable name (not {var!r}).</span>"
            return
        shell = self.shell or _shell()
        if shell is None:
            self.message.value = "<span class='bad'>✗ Loading into a variable needs a running IPython kernel; use mlops_nb.load_model(ref).</span>"
            return

        def load() -> str:
            shell.user_ns[var] = load_model(v.ref, store=self.store)
            return f"{v.ref} loaded into {var} (artifact and fingerprint verified)"

        self._run(load)

    def _lineage(self, _button=None) -> None:
        from ..registry.lineage import lineage

        v = self._selected()
        if v is None:
            return
        try:
            text = repr(lineage(f"model:{v.ref}", store=self.store))
        except MlopsError as exc:
            text = str(exc)
        self.detail.value = f"<pre>{html.escape(text)}</pre>"

    # ---------------------------------------------------------------- display
    def static_html(self) -> str:
        """The models and their versions as plain HTML (no kernel needed)."""
        parts = [_CSS, "<div class='mlops-reg'><b>Model registry</b>", self.spool_note.value]
        if not self._models:
            parts.append("<p><i>No registered model yet.</i></p>")
        for m in self._models:
            parts.append(f"<h4>{html.escape(m.name)}</h4>")
            parts.append(versions_table(versions(m.name, store=self.store)))
            parts.append(alerts_html(self.store or _store(), m.name))
        parts.append("</div>")
        return "".join(parts)

    def __repr__(self) -> str:
        listed = ", ".join(self._model_label(m) for m in self._models) or "no models"
        return f"RegistryPanel({listed})"


def alerts_html(store, name: str, limit: int = 5) -> str:
    """The newest monitoring alerts about model ``name``: what a monitor decided, and why."""
    rows = store.list_alerts(model=name, last=limit)
    if not rows:
        return ""
    items = "".join(
        f"<li><span class='{'bad' if a.get('severity') != 'info' else 'ok'}'>{html.escape(str(a.get('kind')))}</span> "
        f"{when_text(a['created_at'])} {html.escape(str(a.get('monitor')))}: <b>{html.escape(str(a.get('decision') or ''))}</b> "
        f"v{a.get('version')} — {html.escape(str(a.get('message') or ''))}</li>"
        for a in rows
    )
    return f"<div><b>Alerts</b><ul style='margin:2px 0'>{items}</ul></div>"


def versions_table(items) -> str:
    """HTML table of model versions (newest first) with alias badges and warnings."""
    rows = []
    for v in items:
        aliases = "".join(f"<span class='alias'>@{html.escape(a)}</span>" for a in v.aliases)
        data = ", ".join(f"{html.escape(d['name'])} <code>{d['digest'][:8]}</code>" for d in v.data)
        warn = f"<span class='warn' title='stale or out-of-order inputs'>⚠ {len(v.warnings)}</span>" if v.warnings else ""
        rows.append(
            f"<tr><td>v{v.version}</td><td>{aliases}</td><td>{html.escape(v.class_name.rsplit('.', 1)[-1])}</td>"
            f"<td>{html.escape(metric_text(v.metrics))}</td><td>{data}</td><td>{warn}</td>"
            f"<td>{html.escape(v.user or '')}</td><td>{when_text(v.created_at)}</td></tr>"
        )
    head = "<tr><th>version</th><th>aliases</th><th>class</th><th>metrics</th><th>training data</th><th></th><th>by</th><th>created</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _store():
    from ..store import get_store

    return get_store()


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    return get_ipython()

