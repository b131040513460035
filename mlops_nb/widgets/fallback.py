"""The display protocol every panel shares: its live widget, plus static HTML beside it."""

from __future__ import annotations

from typing import Any


class StaticFallback:
    """Mixin for panels: ``_repr_mimebundle_`` holds the widget view and ``static_html()``.

    Frontends with a live kernel show the widget; nbconvert, GitHub and a
    re-opened notebook without widget state show the HTML.
    """

    widget: Any

    def static_html(self) -> str:  # pragma: no cover - each panel defines it
        raise NotImplementedError

    def plain_text(self) -> str:
        return repr(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = self.plain_text()
        return bundle
