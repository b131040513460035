"""The line a panel shows while records of this machine wait in the local spool for its registry."""

from __future__ import annotations

import html


def spool_note(store=None) -> str:
    """HTML saying how many local records are not in ``store`` yet and why; ``""`` when none wait.

    ``store`` None means the configured registry.  A ``stat`` when nothing
    waits: panels ask at every refresh.
    """
    from .. import config
    from ..tracking import spool

    text = spool.waiting_text(store.url if store is not None else config.store_url())
    if text is None:
        return ""
    # Inline: the panels have different stylesheets.  A tint of the warning colour over whatever is
    # behind keeps the text readable in light and dark themes (--jp-warn-color3 is light in both).
    style = (
        "margin:4px 0;padding:3px 8px;border-left:3px solid var(--jp-warn-color1,#f57c00);"
        "background:color-mix(in srgb,var(--jp-warn-color1,#f57c00) 15%,transparent);color:inherit"
    )
    return f"<div class='mlops-spool' style='{style}'>⚠ {html.escape(text)}</div>"


def show_spool_note(widget, store=None) -> None:
    """Put :func:`spool_note` in the ``W.HTML`` ``widget``, hidden while nothing waits (an empty one keeps a line)."""
    widget.value = spool_note(store)
    widget.layout.display = None if widget.value else "none"
