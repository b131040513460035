"""What a cell read and produced, found from its source (AST) and the namespace.

Before the cell runs, :class:`CellCapture` fingerprints the data objects, files
and estimators the cell names (the versions it *read*).  After it runs, names
the cell bound or mutated become outputs: data versions, fitted estimators
(model versions) and metric-like numbers.  Objects the cell cannot name are
never touched, so capture costs nothing for the rest of the namespace.
"""

from __future__ import annotations

import ast
import functools
import numbers
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config
from ..errors import FingerprintError
from ..fingerprint import data_kind, describe, fingerprint, is_fitted_estimator
from .cells import parsed

_MAX_LITERAL_PATH = 4096
_DATA_KINDS = frozenset({"dataframe", "series", "array"})


@dataclass
class CellNames:
    """Names a cell reads and binds, and the string literals it contains.

    ``reads`` are the names read before the cell itself binds them (its
    inputs); ``loads`` are all names read anywhere; ``fitted`` are names the
    cell calls a ``fit``-like method on.
    """

    loads: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    fitted: set[str] = field(default_factory=set)
    literals: list[str] = field(default_factory=list)
    mutated: set[str] = field(default_factory=set)  # visibly changed in place (df['x'] = …, inplace=True)
    # Data reached through a read name: ``digits.data`` -> ("digits", (("attr", "data"),)).
    chains: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = field(default_factory=dict)


_FIT_METHODS = {"fit", "fit_transform", "fit_predict", "fit_resample", "partial_fit"}
# Methods of numpy/pandas objects that change them in place without an inplace= keyword.
_IN_PLACE_METHODS = {"sort", "fill", "resize", "insert", "update", "pop", "put", "setflags", "itemset"}


@functools.lru_cache(maxsize=64)
def analyze_source(source: str) -> CellNames:
    """Names loaded and bound in ``source`` (Python, already transformed).

    Statements are taken in order, so that a name the cell binds before it
    reads it (``X = ...`` then ``fit(X)``) is not an input, even when an
    earlier run of the same cell left an ``X`` in the namespace.  Within one
    statement reads come first (``x = x + 1`` reads the old ``x``), and a name
    read inside a function body counts as read where the function is defined.
    Cached by source (re-run cells): treat the result as read-only.
    """
    tree = parsed(source)
    names = CellNames()
    for statement in tree.body:
        loads, stores = _statement_names(statement, names)
        for text, chain in _chains(statement).items():
            if chain[0] not in names.stores:  # the cell's own object is not an input
                names.chains.setdefault(text, chain)
        names.reads |= loads - names.stores
        names.loads |= loads
        names.stores |= stores
    return names


def _statement_names(statement: ast.stmt, names: CellNames) -> tuple[set[str], set[str]]:
    loads: set[str] = set()
    stores: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                stores.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            loads.add(node.target.id)  # `x += 1` reads x as well
            names.mutated.add(node.target.id)  # and changes an array in place
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            stores.update(node.names)
        elif isinstance(node, (ast.Subscript, ast.Attribute)) and not isinstance(node.ctx, ast.Load):
            if (base := _base_name(node.value)) is not None:
                names.mutated.add(base)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _FIT_METHODS and isinstance(node.func.value, ast.Name):
                names.fitted.add(node.func.value.id)
            base = _base_name(node.func.value)
            inplace = any(k.arg == "inplace" and not (isinstance(k.value, ast.Constant) and not k.value.value) for k in node.keywords)
            if base is not None and (inplace or node.func.attr in _IN_PLACE_METHODS):
                names.mutated.add(base)
            for keyword in node.keywords:  # numpy's out= writes into its argument
                if keyword.arg == "out" and (base := _base_name(keyword.value)) is not None:
                    names.mutated.add(base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if 0 < len(node.value) <= _MAX_LITERAL_PATH and "\n" not in node.value:
                names.literals.append(node.value)
    return loads, stores


def _chains(statement: ast.stmt) -> dict[str, tuple[str, tuple[tuple[str, Any], ...]]]:
    """Attribute and constant-subscript chains read from a name (``cfg.train_df``,
    ``bunch['target']``), longest first; method calls (``df.head()``) are not chains."""
    called = {id(n.func) for n in ast.walk(statement) if isinstance(n, ast.Call)}
    found: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {}
    for node in ast.walk(statement):
        if not isinstance(node, (ast.Attribute, ast.Subscript)) or not isinstance(node.ctx, ast.Load):
            continue
        steps: list[tuple[str, Any]] = []
        cur: ast.AST = node
        while isinstance(cur, (ast.Attribute, ast.Subscript)):
            if isinstance(cur, ast.Attribute):
                steps.append(("attr", cur.attr))
            elif isinstance(cur.slice, ast.Constant) and isinstance(cur.slice.value, (str, int)):
                steps.append(("item", cur.slice.value))
            else:
                steps = []  # a computed subscript: its base is the input
                break
            cur = cur.value
        if steps and isinstance(cur, ast.Name) and id(node) not in called:
            chain = (cur.id, tuple(reversed(steps)))
            found.setdefault(_chain_text(*chain), chain)
    return found


def _chain_text(base: str, steps: tuple[tuple[str, Any], ...]) -> str:
    return base + "".join(f".{key}" if kind == "attr" else f"[{key!r}]" for kind, key in steps)


def resolve_chain(obj: Any, steps: tuple[tuple[str, Any], ...]) -> tuple[int, Any] | None:
    """The first data object along ``steps`` from ``obj`` and how many steps it took, or None.

    Only plain attributes (no properties, which may compute) and dict items are followed,
    so that looking never runs the user's code or copies data.
    """
    import inspect
    import types

    for i, (kind, key) in enumerate(steps):
        try:
            if kind == "attr":
                if isinstance(obj, types.ModuleType):
                    return None
                if isinstance(obj, dict) and key in obj and not hasattr(type(obj), key):
                    obj = obj[key]  # a dict with attribute access (scikit-learn's Bunch)
                elif key in getattr(obj, "__dict__", {}):
                    obj = obj.__dict__[key]  # a plain instance attribute (dataclass fields...)
                else:
                    static = inspect.getattr_static(obj, key)
                    if hasattr(type(static), "__get__") and not isinstance(static, types.MemberDescriptorType):
                        return None  # a property or method: calling it may compute or copy
                    obj = getattr(obj, key)
            elif isinstance(obj, dict):
                obj = obj[key]
            else:
                return None
        except Exception:  # missing, or a lookup that raises: not an input
            return None
        if data_kind(obj) in {"dataframe", "series", "array"}:
            return i + 1, obj
    return None


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def is_metric_name(name: str) -> bool:
    """Whether a variable name looks like a metric (see ``config.DEFAULT_METRIC_PATTERN``)."""
    return config.metric_regex(config.settings.metric_pattern).search(name) is not None


def safe_attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, also for objects whose lookup raises something else (proxies)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def metric_value(value: Any) -> float | None:
    """``value`` as a float when it is a real number (bools excluded), else None (never raises)."""
    try:  # isinstance asks a proxy's __class__, which may raise anything
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            if getattr(value, "shape", None) == () and getattr(value, "dtype", None) is not None:
                return metric_value(value.item())  # 0-d numpy array
            return None
        return float(value)
    except Exception:
        return None


def data_record(
    name: str, obj: Any, *, digest: str | None = None, known: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """Fingerprint, kind, shape, schema and (for frames) profile of a data object.

    The profile is skipped when ``known(digest)`` says the store already has it.
    Raises :class:`~mlops_nb.errors.FingerprintError` for unsupported objects.
    """
    info = describe(obj)
    # Anything else fingerprintable (a list, a dict, a string) is a version by digest only; the registry
    # needs a kind for it (a record without one could never be written, and its run would wait forever).
    info["kind"] = info["kind"] or "object"
    digest = digest or fingerprint(obj)
    profile = None
    if info["kind"] in {"dataframe", "series"} and not (known and known(digest)):
        profile = _profile(obj)
    return {"name": name, "digest": digest, **info, "profile": profile}


def _profile(obj: Any) -> dict[str, Any] | None:
    try:
        from ..profiling.profile import build_profile
    except ImportError:  # profiles arrive with the drift module
        return None
    try:
        return build_profile(obj)
    except Exception as exc:  # a profile is a convenience: never lose the run for it
        warnings.warn(f"mlops_nb: could not profile data: {exc}", stacklevel=2)
        return None


def _existing_path(value: Any) -> Path | None:
    try:  # isinstance asks a proxy's __class__, which may raise anything
        if isinstance(value, Path) or (isinstance(value, str) and value.strip() == value and value):
            path = Path(value).expanduser()
            if path.is_file() or (path.is_dir() and isinstance(value, Path)):
                return path
    except Exception:
        return None
    return None


def _path_key(path: Path) -> str:
    return os.path.relpath(path) if not path.is_absolute() else str(path)


class CellCapture:
    """Record one cell: call :meth:`before`, run the cell, call :meth:`after`.

    Parameters
    ----------
    source : str
        Python source of the cell (IPython syntax already transformed).
    namespace : mapping
        The namespace the cell runs in.
    data, models : bool
        Record data versions / fitted estimators.
    known : callable, optional
        ``known(digest) -> bool``: whether the store already has this data
        version (then its profile is not recomputed).
    defer_profiles : bool
        Profile frames only in :meth:`complete_profiles`, for captures that
        are mostly discarded (autotrack keeps only cells with results).
    lazy_data : bool
        Fingerprint data only in :meth:`complete_data` (call it for runs that
        are kept): inputs the cell visibly changes in place are still
        fingerprinted before it runs, the rest after it, so a cell that
        produces nothing costs no hashing.
    """

    def __init__(
        self,
        source: str,
        namespace: Mapping[str, Any],
        *,
        data: bool = True,
        models: bool = True,
        known: Callable[[str], bool] | None = None,
        defer_profiles: bool = False,
        lazy_data: bool = False,
    ) -> None:
        self.source = source
        self.ns = namespace
        self.record_data = data
        self.record_models = models
        self.known = known or (lambda digest: False)
        self.defer_profiles = defer_profiles
        self.names = analyze_source(source)
        self.inputs: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, Any] = {}
        self.model_digests: dict[str, str] = {}  # already computed, so not hashed again on save
        self.metrics: dict[str, float] = {}
        self.warnings: list[str] = []
        self._before_digests: dict[str, str] = {}
        self._after_digests: dict[str, str] = {}
        self._before_files: dict[str, str | None] = {}
        self._frames: dict[str, Any] = {}  # frames whose profile was deferred
        self.lazy_data = lazy_data
        self._lazy_inputs: dict[str, Any] = {}  # read, not visibly changed: fingerprinted if kept
        self.objects: dict[str, Any] = {}  # digest -> the object (or path) recorded as that version

    # ---- before ----------------------------------------------------------------
    def before(self) -> None:
        """Fingerprint what the cell can read, as it is before the cell runs."""
        for name in sorted(self.names.reads):
            obj = self.ns.get(name)
            if obj is None:
                continue
            if self.record_data and data_kind(obj) in _DATA_KINDS:
                self._read(name, obj, mutated=name in self.names.mutated)
            elif self.record_models and is_fitted_estimator(obj):
                digest = self._digest(name, obj)
                if digest is not None:
                    self._before_digests[name] = digest
            elif self.record_data and (path := _existing_path(obj)) is not None:
                self._file_before(name if isinstance(obj, str) else _path_key(path), path)
        if self.record_data:
            self._chain_inputs()
            for literal in dict.fromkeys(self.names.literals):
                path = _existing_path(literal)
                self._before_files[literal] = None
                if path is not None:
                    self._file_before(literal, path)

    def _chain_inputs(self) -> None:
        """Data the cell reads through an attribute or a key (``digits.data``, ``cfg.train_df``)."""
        for base, steps in self.names.chains.values():
            obj = self.ns.get(base)
            if base not in self.names.reads or obj is None or data_kind(obj) in _DATA_KINDS:
                continue  # bound by the cell first, absent, or data itself (recorded as such)
            found = resolve_chain(obj, steps)
            if found is None:
                continue
            taken, data = found
            name = _chain_text(base, steps[:taken])
            if name not in self.inputs and name not in self._lazy_inputs:
                self._read(name, data, mutated=base in self.names.mutated)

    def _read(self, name: str, obj: Any, *, mutated: bool) -> None:
        """Record ``obj`` as read by the cell: now, or after it when deferred and it cannot change."""
        if self.lazy_data and not mutated:
            self._lazy_inputs[name] = obj
            return
        record = self._data(name, obj)
        if record is not None:
            self.inputs[name] = record
            self._before_digests[name] = record["digest"]

    def context(self) -> dict[str, dict[str, Any]]:
        """What the cell read besides data, described for ``reproduce`` (:mod:`.context`)."""
        from .context import describe_names

        bases = {base for base, _ in self.names.chains.values()}
        data_names = set(self.inputs) | set(self._lazy_inputs)
        chained = {name.split(".", 1)[0].split("[", 1)[0] for name in data_names}
        models = {n: d for n, d in self._before_digests.items() if n not in data_names}
        out = describe_names(self.ns, self.names.reads, skip=data_names, models=models)
        for base in bases & chained:
            out[base] = {"kind": "chain"}  # rebuilt from its inputs named base.attr / base['key']
        return out

    def _file_before(self, key: str, path: Path) -> None:
        record = self._data(key, path)
        if record is not None:
            self.inputs[key] = record
            self._before_files[key] = record["digest"]

    # ---- after -------------------------------------------------------------------
    def after(self) -> None:
        """Collect outputs, models and metrics the cell produced."""
        for name in sorted(self.names.stores | self.names.loads):
            if name not in self.ns or name.startswith("_"):
                continue
            obj = self.ns[name]
            if data_kind(obj) in {"dataframe", "series", "array"}:
                # Bound by the cell, or read and possibly mutated in place.
                if self.lazy_data:
                    continue  # complete_data() does it for kept runs
                if self.record_data and (name in self.names.stores or name in self._before_digests):
                    self._data_output(name, obj)
            elif is_fitted_estimator(obj):
                if self.record_models:
                    self._model_output(name, obj)
            elif name in self.names.stores and is_metric_name(name):
                value = metric_value(obj)
                if value is not None:
                    self.metrics[name] = value
        if self.record_data:
            for literal, before in self._before_files.items():
                path = _existing_path(literal)
                if path is None:
                    continue
                digest = self._digest(literal, path)
                if digest is not None and digest != before:
                    record = self._data(literal, path, digest=digest)
                    if record is not None:
                        self.outputs[literal] = record

    def complete_data(self) -> None:
        """Fingerprint the data deferred by ``lazy_data`` (after :meth:`after`)."""
        if not self.lazy_data:
            return
        self.lazy_data = False
        for name, obj in self._lazy_inputs.items():
            record = self._data(name, obj)
            if record is not None:
                self.inputs[name] = record
                self._before_digests[name] = record["digest"]
        self._lazy_inputs.clear()
        if not self.record_data:
            return
        for name in sorted(self.names.stores | self.names.loads):
            obj = self.ns.get(name)
            if obj is None or name.startswith("_") or data_kind(obj) not in {"dataframe", "series", "array"}:
                continue
            if name in self.names.stores or name in self._before_digests:
                self._data_output(name, obj)

    def _data_output(self, name: str, obj: Any) -> None:
        digest = self._digest(name, obj)
        if digest is None:
            return
        self._after_digests[name] = digest
        if name not in self.names.stores and digest == self._before_digests.get(name):
            return  # read but not changed: an input only
        record = self._data(name, obj, digest=digest)
        if record is not None:
            self.outputs[name] = record

    def _model_output(self, name: str, obj: Any) -> None:
        digest = self._digest(name, obj)
        produced = name in self.names.stores or name in self.names.fitted
        if digest is not None and (produced or digest != self._before_digests.get(name)):
            self.models[name] = obj
            self.model_digests[name] = digest
            best = getattr(obj, "best_estimator_", None)
            if best is not None and is_fitted_estimator(best):
                self.models[f"{name}.best_estimator_"] = best

    # ---- helpers -----------------------------------------------------------------
    def _digest(self, name: str, obj: Any) -> str | None:
        try:
            return fingerprint(obj)
        except FingerprintError as exc:
            self.warnings.append(f"{name}: {exc}")
            return None

    def _data(self, name: str, obj: Any, digest: str | None = None) -> dict[str, Any] | None:
        known = (lambda _digest: True) if self.defer_profiles else self.known
        try:
            record = data_record(name, obj, digest=digest, known=known)
        except FingerprintError as exc:
            self.warnings.append(f"{name}: {exc}")
            return None
        if self.defer_profiles and record["kind"] in {"dataframe", "series"}:
            self._frames[name] = obj
        self.objects[record["digest"]] = obj
        return record

    def complete_profiles(self) -> None:
        """Build the profiles deferred by ``defer_profiles`` (call only for runs that are kept).

        An input is profiled only if the cell left it unchanged, so that the
        profile always describes the version that was recorded.
        """
        for records, inputs in ((self.inputs, True), (self.outputs, False)):
            for name, record in records.items():
                obj = self._frames.get(name)
                if obj is None or record["profile"] is not None or self.known(record["digest"]):
                    continue
                if inputs and self._after_digests.get(name) != record["digest"]:
                    continue  # changed in place by the cell: the old content is gone
                record["profile"] = _profile(obj)
        self._frames.clear()
