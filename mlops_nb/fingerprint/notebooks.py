"""The content hash of a notebook: what it does, not what it last showed."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any


def notebook_hash(nb: Mapping[str, Any]) -> str:
    """SHA-256 of what a notebook *does*: kernel, cell types, sources and tags.

    Outputs, execution counts and other metadata are left out, so running or
    re-saving a notebook in Jupyter does not change its hash; editing any cell does.
    """
    kernel = (nb.get("metadata", {}).get("kernelspec") or {}).get("name")
    cells = [
        [cell.get("cell_type"), cell_text(cell.get("source", "")), sorted(cell.get("metadata", {}).get("tags", []))]
        for cell in nb.get("cells", [])
    ]
    body = json.dumps({"kernel": kernel, "cells": cells}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def notebook_file_hash(path: str | os.PathLike[str]) -> str:
    """:func:`notebook_hash` of the notebook file at ``path`` (OSError / ValueError when unreadable)."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if not isinstance(nb, dict):
        raise ValueError(f"{path} is not a notebook")
    if nb.get("nbformat", 4) < 4:  # an old format: hashed as nbformat upgrades it, as jobs read it
        import nbformat

        nb = nbformat.convert(nbformat.from_dict(nb), 4)
    return notebook_hash(nb)


def cell_text(source: str | list[str]) -> str:
    """A cell's source as one string (saved notebooks may split it into lines)."""
    return "".join(source) if isinstance(source, list) else source
