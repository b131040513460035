"""Stale, hidden-state and out-of-order inputs, from the session's own cell history.

Every executed cell updates a :class:`Ledger`: for each name the cell binds or
changes in place, which cell did it (the cell id JupyterLab sends with each
execution, else a hash of the source), when (a sequence number), and from
which other names the value was computed (a per-statement data flow of the
cell's AST).  When a tracked run reads a name, the ledger says whether

- **stale**: it was computed from data that has changed since, by a cell that
  a top-to-bottom run would have executed *before* it (an edited, re-run
  upstream cell — a later cell mutating the data is ordinary linear flow).
  Re-running a cell that gives a value the same content again is not a
  change: before a cell rebinds a value that others were made from, its
  fingerprint is taken, and compared with the new value's after the cell;
- **hidden**: the cell that defined it was deleted, or re-run with source that
  no longer defines it;
- **out of order**: the cell that defined it sits below the current cell in the
  saved notebook.

A straight top-to-bottom run never warns: every cell runs once, in order.
Names defined before ``%load_ext mlops_nb``, modules, classes and functions are
not judged (nothing is known about them, or they are code rather than data).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import time
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cells import parsed

_CODE = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)


def _is_code(obj: Any) -> bool:
    """Whether ``obj`` is a module, class or function (by its real type: a proxy's __class__ may raise)."""
    return issubclass(type(obj), _CODE)


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
# Method calls that change their object in place (estimators, or pandas' inplace=True).
_MUTATING_METHODS = {"fit", "partial_fit", "fit_transform", "fit_predict", "set_params"}


def cell_number_before(shell, info: Any = None) -> int | None:
    """The execution count of the cell about to run, from ``pre_run_cell``.

    IPython 9 moves ``shell.execution_count`` on before ``pre_run_cell`` for
    cells stored in history; IPython 8 after the cell ran.
    """
    import IPython

    count = shell.execution_count
    if IPython.version_info[0] >= 9 and getattr(info, "store_history", False):
        count -= 1
    return count


@dataclass(frozen=True)
class Binding:
    """The latest value of one name: which cell made it, when, and from what."""

    name: str
    seq: int
    cell: str
    execution_count: int | None
    deps: Mapping[str, int]  # names it was computed from -> their version at the time
    when: float
    version: int  # the seq at which its content last changed


@dataclass(frozen=True)
class CellExecution:
    """The latest execution of one cell."""

    seq: int
    execution_count: int | None
    binds: frozenset[str]


@functools.lru_cache(maxsize=256)
def cell_flow(source: str) -> dict[str, frozenset[str]]:
    """For each name ``source`` binds or changes in place, the outside names its value came from.

    Statements are followed in order: ``X = df.dropna()`` then ``y = X.sum()``
    gives ``y`` the dependencies of ``X`` (``df``), not ``X`` itself.  A name
    changed in place (``df['r'] = …``, ``clf.fit(X, y)``) keeps what it was
    made from.  Definitions (def, class, import) depend on nothing.
    """
    try:
        tree = parsed(source)
    except SyntaxError:
        return {}
    local: dict[str, frozenset[str]] = {}
    for statement in tree.body:
        if isinstance(statement, _DEFINITIONS):
            for name in _defined(statement):
                local[name] = frozenset()
            continue
        loads, stores, mutated = _statement_flow(statement)
        deps: set[str] = set()
        for name in loads:
            deps |= local.get(name, {name})
        for name in stores | mutated:
            keep = local.get(name, {name}) if name in mutated else ()
            local[name] = frozenset(deps.union(keep))
    return local


def _defined(statement: ast.stmt) -> list[str]:
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in statement.names]
    return [statement.name]  # type: ignore[attr-defined]


def _statement_flow(statement: ast.stmt) -> tuple[set[str], set[str], set[str]]:
    loads: set[str] = set()
    stores: set[str] = set()
    mutated: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            base = _base_name(node.value)
            if base is not None:
                mutated.add(base)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            loads.add(node.target.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = _base_name(node.func.value)
            inplace = any(k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords)
            if base is not None and (inplace or node.func.attr in _MUTATING_METHODS):
                mutated.add(base)
    return loads, stores, mutated


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


@dataclass
class Ledger:
    """Which cell defined each name of one shell's namespace, and from what."""

    shell: Any
    bindings: dict[str, Binding] = field(default_factory=dict)
    cells: dict[str, CellExecution] = field(default_factory=dict)
    first_run: dict[str, int] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    seq: int = 0
    _before: dict[str, str | None] = field(default_factory=dict)  # fingerprints taken before the running cell
    _order_cache: tuple[Any, Any] = (None, None)

    # ---- recording -----------------------------------------------------------------
    def observe_meta(self, meta: Mapping[str, Any] | None) -> None:
        """Remember cells JupyterLab reports as deleted (``deletedCells`` in the request metadata)."""
        if isinstance(meta, Mapping):
            self.deleted.update(str(c) for c in meta.get("deletedCells") or ())

    def before(self, info: Any) -> None:
        """Before a cell runs: fingerprint the values it will rebind that other values were made from.

        Only a re-run rebinds such a value, so a straight run pays nothing here.
        """
        self._before = {}
        flow = self._flow(info) or {}
        rebinds = [n for n in flow if n in self.bindings and n in self.shell.user_ns]
        if not rebinds:
            return
        used = {(dep, version) for b in self.bindings.values() for dep, version in b.deps.items()}
        ns = self.shell.user_ns
        for name in rebinds:
            if (name, self.bindings[name].version) in used and not _is_code(ns[name]):
                self._before[name] = _content_digest(ns[name])

    def record(self, info: Any, result: Any = None) -> None:
        """After a cell ran: update the bindings it made (called for every cell)."""
        before, self._before = self._before, {}
        flow = self._flow(info)
        if flow is None:
            return
        self.seq += 1
        cell = _cell_key(info)
        count = getattr(result, "execution_count", None)
        ns = self.shell.user_ns
        now = time.time()
        for name, deps in flow.items():
            if name not in ns or name.startswith("_"):
                continue
            old = self.bindings.get(name)
            recorded: dict[str, int] = {}
            for dep in deps:
                if dep == name:
                    if old is not None:
                        recorded.update(old.deps)  # changed in place / from itself: keeps its origins
                    continue
                known = self.bindings.get(dep)
                if known is not None and not _is_code(ns.get(dep)):
                    recorded[dep] = known.version
            version = self.seq
            if old is not None and before.get(name) is not None and _content_digest(ns[name]) == before[name]:
                version = old.version  # recomputed to the same content: what was made from it is current
            self.bindings[name] = Binding(name, self.seq, cell, count, recorded, now, version)
        self.cells[cell] = CellExecution(self.seq, count, frozenset(flow))
        self.first_run.setdefault(cell, self.seq)

    def _flow(self, info: Any) -> dict[str, frozenset[str]] | None:
        raw = getattr(info, "raw_cell", None) or ""
        if not raw.strip() or getattr(info, "silent", False):
            return None
        return cell_flow(getattr(info, "transformed_cell", None) or self.shell.transform_cell(raw))

    # ---- judging ---------------------------------------------------------------------
    def check(self, reads: Iterable[str], info: Any) -> list[dict[str, Any]]:
        """Warnings about the names a cell (``info`` of ``pre_run_cell``) is about to read.

        Returns ``[{kind, name, message, cell}]``, kind being ``stale``, ``hidden`` or ``out_of_order``.
        """
        ns = self.shell.user_ns
        current = _cell_key(info)
        order: dict[str, int] | None = None
        saved_at = 0.0
        candidates = [n for n in sorted(reads) if n in self.bindings and n in ns and not _is_code(ns[n])]
        if candidates:
            order, saved_at = self._notebook_order()
        found = []
        for name in candidates:
            binding = self.bindings[name]
            warning = (
                self._hidden(binding, order, saved_at)
                or self._out_of_order(binding, current, order)
                or self._stale(binding, order)
            )
            if warning is not None:
                found.append(warning)
        return found

    def _hidden(self, b: Binding, order: dict[str, int] | None, saved_at: float) -> dict[str, Any] | None:
        deleted = b.cell in self.deleted or (
            order is not None and not b.cell.startswith("src:") and b.cell not in order and saved_at > b.when
        )
        if deleted:
            return _warning("hidden", b.name, b.cell, f"hidden state: {b.name} was defined by a cell that has been deleted ({_label(b)})")
        latest = self.cells.get(b.cell)
        if latest is not None and latest.seq > b.seq and b.name not in latest.binds:
            return _warning(
                "hidden", b.name, b.cell,
                f"hidden state: {b.name} was defined by {_label(b)}, which has been re-run with source that no longer defines it",
            )  # fmt: skip
        return None

    def _out_of_order(self, b: Binding, current: str | None, order: dict[str, int] | None) -> dict[str, Any] | None:
        if order is None or current is None or b.cell == current or b.cell not in order or current not in order:
            return None
        if order[b.cell] > order[current]:
            return _warning("out_of_order", b.name, b.cell, f"out of order: {b.name} is defined by a cell below this one ({_label(b)})")
        return None

    def _stale(self, b: Binding, order: dict[str, int] | None) -> dict[str, Any] | None:
        found = self._changed_upstream(b, order, {b.name})
        if found is None:
            return None
        via, changer = found
        path = f" (via {', '.join(via)})" if via else ""
        return _warning(
            "stale", b.name, changer.cell,
            f"stale: {b.name} was made from {changer.name}{path} before {changer.name} changed ({_label(changer)})",
        )  # fmt: skip

    def _changed_upstream(self, b: Binding, order, seen: set[str]) -> tuple[list[str], Binding] | None:
        for dep, version in sorted(b.deps.items()):
            now = self.bindings.get(dep)
            if now is None:
                continue
            if now.version > version and self._runs_before(now.cell, b, order):
                return [], now
            if dep not in seen:
                seen.add(dep)
                deeper = self._changed_upstream(now, order, seen)
                if deeper is not None:
                    return [dep, *deeper[0]], deeper[1]
        return None

    def _runs_before(self, changer: str, b: Binding, order: dict[str, int] | None) -> bool:
        """Whether a top-to-bottom run would execute ``changer`` before the cell that made ``b``."""
        if changer == b.cell:
            return False
        if order is not None and changer in order and b.cell in order:
            return order[changer] < order[b.cell]
        # Without the saved notebook: the changing cell had run before b was made, so it was re-run.
        return self.first_run.get(changer, b.seq + 1) < b.seq

    def _notebook_order(self) -> tuple[dict[str, int] | None, float]:
        """Code-cell ids of the saved notebook -> position, and when it was saved (or None, 0)."""
        from ..environment import notebook_path

        path = notebook_path(self.shell.user_ns)
        if not path:
            return None, 0.0
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None, 0.0
        key, cached = self._order_cache
        if key == (path, mtime):
            return cached, mtime
        order: dict[str, int] | None
        try:  # plain JSON: importing nbformat (its schema validator) costs a kernel 1-3 s
            with open(path, encoding="utf-8") as f:
                cells = json.load(f).get("cells") or []
            ids = [c.get("id") for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
            order = {str(i): n for n, i in enumerate(ids) if i} or None
        except Exception:  # an unreadable notebook only means no order is known
            order = None
        self._order_cache = ((path, mtime), order)
        return order, mtime


def _content_digest(value: Any) -> str | None:
    """The value's fingerprint, or None when it has none (then any rebinding counts as a change)."""
    from ..fingerprint import fingerprint

    try:
        return fingerprint(value)
    except Exception:  # an object fingerprinting cannot read is simply not compared
        return None


def _cell_key(info: Any) -> str:
    return getattr(info, "cell_id", None) or _source_key(getattr(info, "raw_cell", "") or "")


def _source_key(source: str) -> str:
    return "src:" + hashlib.blake2b(source.encode(), digest_size=8).hexdigest()


def _label(b: Binding) -> str:
    if b.execution_count:
        return f"cell [{b.execution_count}]"
    return "cell " + (b.cell[4:12] if b.cell.startswith("src:") else b.cell[:8])


def _warning(kind: str, name: str, cell: str, message: str) -> dict[str, Any]:
    return {"kind": kind, "name": name, "message": message, "cell": None if cell.startswith("src:") else cell}
