"""data_diff (issue 20): what changed between two versions; shared chunks are not read."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import mlops_nb
from mlops_nb.data.diff import data_diff
from mlops_nb.errors import SnapshotError


def _pair(n: int = 120_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    a = pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "k": rng.integers(0, 50, n),
                      "s": rng.choice(["red", "green", "blue"], n).astype(object)})  # fmt: skip
    b = a.copy()
    b.loc[[10, n // 2], "x"] = 0.0  # two values changed
    b.loc[n * 7 // 12, "s"] = "violet"
    b = b.drop(index=[20]).reset_index(drop=True)  # one row removed
    b = pd.concat([b, pd.DataFrame({"id": [n], "x": [1.0], "k": [1], "s": ["red"]})], ignore_index=True)  # one added
    return a, b


def test_by_key_counts_rows_and_values_with_examples(store, monkeypatch):
    from mlops_nb.snapshots import chunking

    monkeypatch.setattr(chunking, "TARGET_CHUNK_BYTES", 1 << 17)  # dozens of chunks on 120k rows
    a, b = _pair()
    ra, rb = mlops_nb.snapshot(a, name="a"), mlops_nb.snapshot(b, name="b")
    diff = data_diff(ra, rb, key="id")
    assert (diff.rows_added, diff.rows_removed, diff.rows_changed) == (1, 1, 3)
    assert diff.rows_unchanged == len(a) - 1 - 3
    assert diff.column_changes == {"x": 2, "s": 1}
    assert {e["key"] for e in diff.examples["x"]} == {10, len(a) // 2}
    assert diff.examples["s"][0]["b"] == "violet"
    # only the chunks around the edits were read; the others were counted unread
    assert diff.chunks_skipped > 10 and sum(diff.chunks_read) < diff.chunks_skipped
    in_memory = data_diff(a, b, key="id", shift=False)
    assert (in_memory.rows_added, in_memory.rows_removed, in_memory.rows_changed) == (1, 1, 3)
    assert "<table>" in diff._repr_html_() and "violet" in diff._repr_html_()


def test_by_content_and_schema_changes(store):
    a = pd.DataFrame({"a": [1, 2, 3, 3], "b": ["x", "y", "z", "z"]})
    b = pd.DataFrame({"a": [1, 3, 4, 3], "b": ["x", "z", "w", "z"], "c": [0.5] * 4})
    diff = data_diff(a, b)
    assert diff.added_columns == ["c"] and not diff.removed_columns
    assert (diff.rows_added, diff.rows_removed, diff.rows_unchanged) == (1, 1, 3)  # duplicates counted as such
    retyped = data_diff(a, a.astype({"a": "float64"}))
    assert retyped.retyped_columns == {"a": ("int64", "float64")}
    assert data_diff(a, a.copy()).identical


def test_bad_diffs_say_why(store):
    a = pd.DataFrame({"id": [1, 1], "v": [1, 2]})
    with pytest.raises(SnapshotError, match="not unique"):
        data_diff(a, a, key="id")
    with pytest.raises(SnapshotError, match="not in both versions"):
        data_diff(a, a.rename(columns={"id": "key"}), key="id")
    with pytest.raises(SnapshotError, match="Cannot diff a list"):
        data_diff([1, 2], a)


def test_cli_diff_exits_1_when_versions_differ(store, mlops_home, kernel_env):
    a, b = _pair(2_000)
    ra, rb = mlops_nb.snapshot(a, name="a"), mlops_nb.snapshot(b, name="b")
    out = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "data", "diff", ra, rb, "--key", "id", "--json"],
                         capture_output=True, text=True, env=kernel_env)  # fmt: skip
    assert out.returncode == 1, out.stderr
    summary = json.loads(out.stdout)
    assert summary["rows_changed"] == 3 and summary["column_changes"] == {"x": 2, "s": 1}
    same = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "data", "diff", ra, ra], capture_output=True, text=True,
                          env=kernel_env)  # fmt: skip
    assert same.returncode == 0 and "(identical)" in same.stdout
