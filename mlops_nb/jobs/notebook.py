"""Notebook files as jobs see them: loading, content hash, parameters."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat

from ..errors import JobError
from ..fingerprint.notebooks import notebook_hash

PARAMETERS_TAG = "parameters"
#: Tags papermill gives the cells it adds to an executed notebook.
PAPERMILL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def notebook_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as an absolute path to an existing ``.ipynb`` file, or a clear error."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise JobError(f"Notebook {str(path)!r} not found: give the path of an .ipynb file.", path=str(path))
    return file.resolve()


def load_notebook(path: str | os.PathLike[str]) -> nbformat.NotebookNode:
    """Read a notebook without validating it (validation is a check of its own)."""
    file = notebook_file(path)
    try:
        with open(file, encoding="utf-8") as f:
            return nbformat.read(f, as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError, nbformat.reader.NotJSONError) as exc:
        raise JobError(f"{file} is not a notebook (not valid JSON): {exc}", path=str(file)) from None
    except OSError as exc:
        raise JobError(f"Cannot read {file}: {exc.strerror}.", path=str(file)) from None
    except Exception as exc:  # nbformat raises assorted errors for malformed documents
        raise JobError(f"{file} is not a readable notebook: {exc}", path=str(file)) from None


def file_hash(path: str | os.PathLike[str]) -> str:
    """:func:`notebook_hash` of the notebook at ``path``."""
    return notebook_hash(load_notebook(path))


def params_hash(parameters: Mapping[str, Any] | None) -> str:
    """SHA-256 of a parameter mapping (key order does not matter)."""
    body = json.dumps(dict(parameters or {}), sort_keys=True, default=repr)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def kernel_name(nb: nbformat.NotebookNode) -> str | None:
    """The kernelspec name saved in the notebook, if any."""
    return (nb.get("metadata", {}).get("kernelspec") or {}).get("name") or None


def parameter_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of cells tagged ``parameters``."""
    return [i for i, cell in enumerate(nb.cells) if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])]


def declared_parameters(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Parameters of the notebook's ``parameters`` cell, as papermill infers them.

    Read with :mod:`ast` here rather than with ``papermill.inspect_notebook``:
    the same names, defaults (source text), annotations and trailing-comment
    help, without importing papermill (0.5 s) in the process that starts a job.

    Returns
    -------
    dict
        name -> ``{"type": str, "default": str, "help": str}`` (defaults as source text).
    """
    file = notebook_file(path)
    nb = load_notebook(file)
    language = (nb.metadata.get("kernelspec", {}).get("language") or nb.metadata.get("language_info", {}).get("name")
                or "python")  # fmt: skip
    if language.lower() != "python":
        return _papermill_parameters(file)  # its translators know R, Julia, Scala...
    cells = parameter_cells(nb)
    if not cells:
        return {}
    source = nb.cells[cells[0]].source
    # Magics and shell lines are IPython's, not Python's; papermill skips them too.
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        raise JobError(f"papermill cannot read the parameters of {path}: line {exc.lineno} of the "
                       f"parameters cell: {exc.msg}", path=str(path)) from None  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation = node.target.id, ast.unparse(node.annotation)
        else:
            continue
        after = lines[node.end_lineno - 1][node.end_col_offset :].strip()
        info = {"inferred_type_name": annotation or "None", "default": ast.get_source_segment("\n".join(lines), node.value)}
        found[name] = {"type": _type_name(info), "default": info["default"],
                       "help": after[1:].strip() if after.startswith("#") else ""}  # fmt: skip
    return found


def _papermill_parameters(file: Path) -> dict[str, dict[str, Any]]:
    from papermill import inspect_notebook

    try:
        found = inspect_notebook(str(file))
    except Exception as exc:  # papermill raises several types for unparsable cells
        raise JobError(f"papermill cannot read the parameters of {file}: {exc}", path=str(file)) from None
    return {
        name: {"type": _type_name(info), "default": info.get("default"), "help": info.get("help") or ""}
        for name, info in found.items()
    }


def _type_name(info: Mapping[str, Any]) -> str | None:
    # papermill reads only annotations ("x: int = 1"); otherwise the literal tells.
    annotated = info.get("inferred_type_name")
    if annotated and annotated != "None":
        return annotated
    try:
        return type(ast.literal_eval(info.get("default") or "")).__name__
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def parse_value(text: str) -> Any:
    """A command-line parameter value, typed the way papermill's ``-p`` does it."""
    if text in {"True", "False", "None"}:
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_parameters(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as a typed mapping."""
    params: dict[str, Any] = {}
    for name, value in pairs:
        if not name.isidentifier():
            raise JobError(f"Parameter name {name!r} is not a Python identifier.", name=name)
        params[name] = parse_value(value)
    return params


def original_index(nb: nbformat.NotebookNode, index: int) -> int:
    """Index in the source notebook of cell ``index`` of papermill's output notebook."""
    added = sum(
        1 for cell in nb.cells[:index] if PAPERMILL_TAGS & set(cell.get("metadata", {}).get("tags", []))
    )
    return index - added


def write_file(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` (folders created), turning OS errors into one clear JobError."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise JobError(f"Cannot write {target}: {exc.strerror}.", path=str(target)) from None
    return target


def check_parameter_names(
    path: str | os.PathLike[str], parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
) -> None:
    """Refuse parameters the notebook does not declare, or whose value has the wrong type.

    ``parameters`` is one mapping or several (a batch's combinations, checked
    with one parse of the notebook).  Papermill would only warn about an unknown
    name, and a wrong type fails much later inside the notebook, so both are
    refused before anything starts.
    """
    combos = [parameters] if isinstance(parameters, Mapping) else list(parameters)
    names = sorted({name for combo in combos for name in combo})
    if not names:
        return
    declared = declared_parameters(path)
    unknown = [n for n in names if n not in declared]
    if not declared:
        raise JobError(
            f"{path} has no cell tagged 'parameters', so -p {', '.join(names)} cannot be applied: "
            "tag the cell that holds the defaults.",
            path=str(path),
        )
    if unknown:
        raise JobError(
            f"Parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not declared in the parameters cell "
            f"of {path} (declared: {', '.join(declared)}).",
            path=str(path),
            unknown=unknown,
        )
    for combo in combos:
        for name, value in combo.items():
            expected = declared[name]["type"]
            if not value_fits(value, expected):
                default = declared[name]["default"]
                raise JobError(
                    f"Parameter {name} expects {expected} (the parameters cell has {name} = {default}), "
                    f"got {value!r} ({type(value).__name__}).",
                    path=str(path),
                    name=name,
                    expected=expected,
                    value=value,
                )


# Types a command-line or grid value can be checked against; anything else is let through.
_CHECKABLE = {"int": (int,), "float": (int, float), "bool": (bool,), "complex": (int, float, complex)}


def value_fits(value: Any, type_name: str | None) -> bool:
    """Whether ``value`` suits a parameter declared (annotated or by its default) as ``type_name``.

    Only certain mismatches are refused: a number parameter given text, an
    ``int`` given ``2.5``, a ``bool`` given a number.  ``None`` is accepted
    everywhere (papermill passes it through, and many parameters take it);
    ``str``, containers and types this cannot judge accept anything, since
    ``-p name 3`` reaches a ``str`` parameter as the number 3 by papermill's rules.
    """
    if value is None or not type_name:
        return True
    words = set(re.findall(r"[A-Za-z_][\w.]*", type_name)) - {"Optional", "Union", "typing", "None", "NoneType"}
    if not words or not words <= set(_CHECKABLE):
        return True
    allowed = tuple(t for w in words for t in _CHECKABLE[w])
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)
