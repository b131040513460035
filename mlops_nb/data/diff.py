"""What changed between two data versions: schema, rows, values, distributions.

Two snapshotted versions are compared chunk by chunk first: a chunk both list holds the
same rows on both sides, so it is counted as unchanged without being read. Only the chunks
one side lacks are read and compared row by row (by ``key`` when given, else by whole-row
content), which is what makes diffing two versions of a large table that differ in a few
rows read a few chunks. Distribution shift per column reuses the drift engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SnapshotError

EXAMPLES = 5
SHIFT_ROWS = 1_000_000  # above this, shift is computed only when asked: it reads every chunk


@dataclass
class DataDiff:
    """The differences between data versions ``a`` and ``b`` (see :func:`data_diff`)."""

    a: str
    b: str
    rows_a: int
    rows_b: int
    added_columns: list[str] = field(default_factory=list)
    removed_columns: list[str] = field(default_factory=list)
    retyped_columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    key: list[str] | None = None
    rows_added: int = 0
    rows_removed: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    column_changes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    added_examples: list[dict[str, Any]] = field(default_factory=list)
    removed_examples: list[dict[str, Any]] = field(default_factory=list)
    chunks_read: tuple[int, int] = (0, 0)
    chunks_skipped: int = 0
    shift: Any = None  # a DriftReport, or None
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not (self.added_columns or self.removed_columns or self.retyped_columns or self.rows_added
                    or self.rows_removed or self.rows_changed)  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """The counts as plain values (what the CLI prints as JSON)."""
        return {
            "a": self.a, "b": self.b, "rows": [self.rows_a, self.rows_b], "identical": self.identical,
            "added_columns": self.added_columns, "removed_columns": self.removed_columns,
            "retyped_columns": {k: list(v) for k, v in self.retyped_columns.items()}, "key": self.key,
            "rows_added": self.rows_added, "rows_removed": self.rows_removed, "rows_changed": self.rows_changed,
            "rows_unchanged": self.rows_unchanged, "column_changes": self.column_changes,
            "chunks_read": list(self.chunks_read), "chunks_skipped": self.chunks_skipped,
            "drifted_columns": None if self.shift is None else [r["column"] for r in self.shift.rows if r["drifted"]],
        }  # fmt: skip

    def text(self) -> str:
        lines = [f"data diff {self.a} -> {self.b}: {self.rows_a:,} -> {self.rows_b:,} rows"
                 + ("  (identical)" if self.identical else "")]  # fmt: skip
        for what, cols in (("added", self.added_columns), ("removed", self.removed_columns)):
            if cols:
                lines.append(f"  columns {what}: {', '.join(cols)}")
        for col, (old, new) in self.retyped_columns.items():
            lines.append(f"  column {col}: {old} -> {new}")
        by = f"by key {', '.join(self.key)}" if self.key else "by row content"
        lines.append(f"  rows ({by}): +{self.rows_added:,} added, -{self.rows_removed:,} removed"
                     + (f", ~{self.rows_changed:,} changed" if self.key else "") + f", {self.rows_unchanged:,} unchanged")  # fmt: skip
        for col, n in sorted(self.column_changes.items(), key=lambda kv: -kv[1]):
            shown = "; ".join(f"{_short(e['key'])}: {_short(e['a'])} -> {_short(e['b'])}" for e in self.examples.get(col, []))
            lines.append(f"    {col}: {n:,} value(s) changed  e.g. {shown}")
        if self.shift is not None:
            drifted = [r for r in self.shift.rows if r["drifted"]]
            lines.append(f"  distribution: {len(drifted)} of {len(self.shift.rows)} columns shifted"
                         + (f" ({', '.join(str(r['column']) for r in drifted)})" if drifted else ""))  # fmt: skip
        if self.chunks_skipped:
            lines.append(f"  read {self.chunks_read[0]} + {self.chunks_read[1]} chunk(s); {self.chunks_skipped} shared chunk(s) skipped unread")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        """The panel ``%mlops data diff`` shows: counts, changed columns with examples, shift."""
        from html import escape

        def table(header: list[str], rows: list[list[Any]]) -> str:
            head = "".join(f"<th style='text-align:left'>{escape(str(h))}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{escape(_short(c, 60) if not isinstance(c, str) else c)}</td>"
                                           for c in row) + "</tr>" for row in rows)  # fmt: skip
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        verdict = "identical" if self.identical else "different"
        parts = [f"<div><b>data diff</b> {escape(self.a)} &rarr; {escape(self.b)}: <b>{verdict}</b></div>"]
        by = f"key {', '.join(self.key)}" if self.key else "row content"
        counts = [["rows", f"{self.rows_a:,}", f"{self.rows_b:,}"], ["added (by " + by + ")", "", f"{self.rows_added:,}"],
                  ["removed", f"{self.rows_removed:,}", ""], ["unchanged", "", f"{self.rows_unchanged:,}"]]  # fmt: skip
        if self.key:
            counts.insert(3, ["changed", "", f"{self.rows_changed:,}"])
        parts.append(table(["", "a", "b"], counts))
        schema = [[c, "", "added"] for c in self.added_columns] + [[c, "removed", ""] for c in self.removed_columns]
        schema += [[c, old, new] for c, (old, new) in self.retyped_columns.items()]
        if schema:
            parts.append("<div><b>schema</b></div>" + table(["column", "a", "b"], schema))
        if self.column_changes:
            rows = [[col, f"{n:,}", "; ".join(f"{_short(e['key'])}: {_short(e['a'])} → {_short(e['b'])}"
                                             for e in self.examples.get(col, []))]
                    for col, n in sorted(self.column_changes.items(), key=lambda kv: -kv[1])]  # fmt: skip
            parts.append("<div><b>values changed</b></div>" + table(["column", "rows", "examples"], rows))
        for title, examples in (("added rows (examples)", self.added_examples), ("removed rows (examples)", self.removed_examples)):
            if examples:
                parts.append(f"<div><b>{title}</b></div>" + table(list(examples[0]), [list(e.values()) for e in examples]))
        if self.shift is not None:
            rows = [[str(r["column"]), r["test"], f"{r['score']:.4g}", "drift" if r["drifted"] else "-"] for r in self.shift.rows]
            parts.append("<div><b>distribution shift</b></div>" + table(["column", "test", "value", ""], rows))
        if self.chunks_skipped:
            parts.append(f"<div>read {self.chunks_read[0]} + {self.chunks_read[1]} chunk(s); {self.chunks_skipped} "
                         "shared chunk(s) skipped unread</div>")  # fmt: skip
        parts.extend(f"<div>note: {escape(n)}</div>" for n in self.notes)
        return "<div class='mlops-data-diff'>" + "".join(parts) + "</div>"


def data_diff(a: Any, b: Any, *, key: str | list[str] | None = None, shift: bool | None = None,
              store: Any = None) -> DataDiff:  # fmt: skip
    """Compare two data versions: references (``data:``, ``run:ID/NAME``, ``model:REF/NAME``)
    or DataFrames/Series.

    ``key``: column(s) identifying a row, so that changed rows are told from added and
    removed ones. ``shift``: compute per-column distribution shift with the drift engine
    (default: when both sides have at most a million rows).
    """
    keys = [key] if isinstance(key, str) else list(key) if key else None
    side_a, side_b = _side(a, store), _side(b, store)
    out = DataDiff(side_a.label, side_b.label, side_a.rows, side_b.rows, key=keys)
    schema_a, schema_b = side_a.schema(), side_b.schema()
    out.added_columns = [c for c in schema_b if c not in schema_a]
    out.removed_columns = [c for c in schema_a if c not in schema_b]
    out.retyped_columns = {c: (schema_a[c], schema_b[c]) for c in schema_a if c in schema_b and schema_a[c] != schema_b[c]}
    for k in keys or []:
        if k not in schema_a or k not in schema_b:
            raise SnapshotError(f"Key column {k!r} is not in both versions (columns: {sorted(set(schema_a) & set(schema_b))}).",
                                key=k)  # fmt: skip
    shared = set(side_a.chunks) & set(side_b.chunks) if not out.retyped_columns and schema_a == schema_b else set()
    out.chunks_skipped = len(shared)
    rows_a, rows_b = side_a.rows_outside(shared), side_b.rows_outside(shared)
    out.chunks_read = (side_a.chunks_read, side_b.chunks_read)
    unchanged_shared = sum(side_a.chunk_rows.get(c, 0) for c in shared)
    common = [c for c in schema_a if c in schema_b]
    if keys:
        _by_key(out, rows_a, rows_b, keys, common)
    else:
        _by_content(out, rows_a, rows_b, common)
    out.rows_unchanged += unchanged_shared
    want_shift = shift if shift is not None else max(side_a.rows, side_b.rows) <= SHIFT_ROWS
    if want_shift and common:
        from ..drift import drift

        try:
            out.shift = drift(side_a.frame()[common], side_b.frame()[common])
        except Exception as exc:  # a shift that cannot be computed must not hide the diff
            out.notes.append(f"distribution shift not computed: {exc}")
    elif shift is None and common:
        out.notes.append(f"distribution shift skipped above {SHIFT_ROWS:,} rows (it reads every chunk): pass shift=True")
    return out


# ---- one side ---------------------------------------------------------------------------
class _Side:
    """A version to compare: an object in memory, or a snapshot read chunk by chunk."""

    def __init__(self, label: str, obj: Any = None, manifest: dict | None = None, digest: str | None = None,
                 store: Any = None) -> None:  # fmt: skip
        self.label, self._obj, self.manifest, self.digest, self.store = label, obj, manifest, digest, store
        self.chunks = [c["chunk"] for c in manifest["chunks"]] if manifest else []
        self.chunk_rows = {c["chunk"]: c["rows"] for c in manifest["chunks"]} if manifest else {}
        self.rows = int(manifest["rows"]) if manifest else len(_as_frame(obj))
        self.chunks_read = 0

    def schema(self) -> dict[str, str]:
        if self.manifest is None:
            return {str(c): str(t) for c, t in _as_frame(self._obj).dtypes.items()}
        from ..snapshots.tables import schema_from_text

        meta = self.manifest.get("pandas")
        arrow = schema_from_text(self.manifest["schema"])
        index_columns = set()
        if meta:
            import json

            index_columns = {c for c in json.loads(meta).get("index_columns", []) if isinstance(c, str)}
        return {f.name: str(f.type) for f in arrow if f.name not in index_columns}

    def frame(self) -> Any:
        if self._obj is None:
            from ..snapshots.storage import read_snapshot

            self._obj = read_snapshot(self.digest, self.store)
        return _as_frame(self._obj)

    def rows_outside(self, shared: set[str]) -> Any:
        """The rows of chunks not in ``shared`` (all rows for an object in memory)."""
        if self.manifest is None or not shared:
            if self.manifest is not None:
                self.chunks_read = len(self.chunks)
            return self.frame()
        from ..snapshots.storage import read_chunk_rows

        wanted = [c for c in self.chunks if c not in shared]
        self.chunks_read = len(wanted)
        return _as_frame(read_chunk_rows(self.digest, self.manifest, wanted, self.store))


def _side(x: Any, store: Any) -> _Side:
    if isinstance(x, str):
        from ..snapshots.storage import read_manifest
        from . import _store
        from .references import resolve

        s = _store(store)
        found = resolve(x, s)
        if len(found) != 1:
            raise SnapshotError(f"{x!r} names {len(found)} data versions ({', '.join(found)}): name one.", reference=x)
        record = next(iter(found.values()))
        row = s.get_snapshot(record["digest"])
        if row is None:
            raise SnapshotError(f"{x!r} ({record['digest'][:12]}) has no snapshot to compare.", reference=x)
        manifest = read_manifest(record["digest"], row["manifest"], s)
        if manifest["kind"] not in {"dataframe", "series"}:
            raise SnapshotError(f"{x!r} is a {manifest['kind']}: data diff compares tables.", reference=x)
        return _Side(x, manifest=manifest, digest=record["digest"], store=s)
    if _as_frame(x) is None:
        raise SnapshotError(f"Cannot diff a {type(x).__name__}: pass DataFrames, Series or data references.")
    return _Side(f"<{type(x).__name__}>", obj=x)


def _as_frame(obj: Any) -> Any:
    import pandas as pd

    if isinstance(obj, pd.Series):
        return obj.to_frame()
    return obj if isinstance(obj, pd.DataFrame) else None


# ---- rows ---------------------------------------------------------------------------------
def _row_hashes(frame: Any, columns: list[str]) -> np.ndarray:
    import pandas as pd

    if not len(frame):
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()


def _by_content(out: DataDiff, a: Any, b: Any, common: list[str]) -> None:
    ha, hb = _row_hashes(a, common), _row_hashes(b, common)
    ua, ca = np.unique(ha, return_counts=True)
    ub, cb = np.unique(hb, return_counts=True)
    both, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    kept = np.minimum(ca[ia], cb[ib])
    out.rows_unchanged = int(kept.sum())
    out.rows_removed = len(ha) - out.rows_unchanged
    out.rows_added = len(hb) - out.rows_unchanged
    only_a = ~np.isin(ha, both)
    only_b = ~np.isin(hb, both)
    out.removed_examples = _records(a[only_a].head(EXAMPLES))
    out.added_examples = _records(b[only_b].head(EXAMPLES))


def _by_key(out: DataDiff, a: Any, b: Any, keys: list[str], common: list[str]) -> None:
    for side, name in ((a, out.a), (b, out.b)):
        if side[keys].duplicated().any():
            raise SnapshotError(f"Key {keys} is not unique in {name}: choose columns that identify a row.", key=keys)
    merged = a[common].merge(b[common], on=keys, how="outer", suffixes=("__a", "__b"), indicator=True)
    out.rows_removed = int((merged["_merge"] == "left_only").sum())
    out.rows_added = int((merged["_merge"] == "right_only").sum())
    matched = merged[merged["_merge"] == "both"]
    changed_any = np.zeros(len(matched), dtype=bool)
    for col in common:
        if col in keys:
            continue
        va, vb = matched[f"{col}__a"], matched[f"{col}__b"]
        differs = ~((va == vb).fillna(False).to_numpy(dtype=bool) | (va.isna() & vb.isna()).to_numpy(dtype=bool))
        if differs.any():
            out.column_changes[col] = int(differs.sum())
            rows = matched[differs].head(EXAMPLES)
            out.examples[col] = [
                {"key": _key_value(r, keys), "a": r[f"{col}__a"], "b": r[f"{col}__b"]} for _, r in rows.iterrows()
            ]
            changed_any |= differs
    out.rows_changed = int(changed_any.sum())
    out.rows_unchanged = len(matched) - out.rows_changed
    out.removed_examples = _records(merged[merged["_merge"] == "left_only"][keys].head(EXAMPLES))
    out.added_examples = _records(merged[merged["_merge"] == "right_only"][keys].head(EXAMPLES))


def _key_value(row: Any, keys: list[str]) -> Any:
    return row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)


def _records(frame: Any) -> list[dict[str, Any]]:
    return frame.to_dict("records")


def _short(value: Any, width: int = 24) -> str:
    text = repr(value.item() if hasattr(value, "item") else value)
    return text if len(text) <= width else text[: width - 3] + "..."
