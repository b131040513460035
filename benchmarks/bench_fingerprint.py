"""Fingerprint of a text-heavy frame, side by side with ``pandas.util.hash_pandas_object``.

A 1,000,000-row frame of the kinds of columns a notebook loads:

- ``email``: object dtype, Python ``str``, about 50,000 distinct addresses;
- ``txn``: ``string[pyarrow]``, transaction codes, mostly distinct;
- ``country``: categorical, 20 categories;
- ``ts``: tz-aware datetimes (``Europe/Paris``, across the DST changes);
- ``amount``, ``score``: float64.

We time ``mlops_nb.fingerprint(df)`` (one 32-hex digest of every value, the dtypes, the names
and the index) against ``pandas.util.hash_pandas_object(df)`` (a uint64 per row, index
included), which is pandas' own way to hash a frame's content.  The two alternate, after one
untimed call each, and each reports its median of 7.  Then each column alone (as a Series, index
included), the same way.

Run: ``python benchmarks/bench_fingerprint.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from _anchor_env import ensure_ours  # noqa: E402

ensure_ours()

ROWS = 1_000_000
DISTINCT_EMAILS = 50_000
REPEATS = 7
TARGET = 5  # hash_pandas_object / ours


def make_frame(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = ["ana", "bob", "chloe", "dmitri", "emma", "farid", "gia", "hugo", "ines", "jun", "karin", "luis"]
    domains = ["example.com", "mail.example.org", "corp.example.net", "uni.example.edu", "example.fr"]
    emails = np.array(
        [f"{first[k % 12]}.{k // 12:05d}@{domains[k % 5]}" for k in range(DISTINCT_EMAILS)], dtype=object
    )
    countries = ["FR", "DE", "ES", "IT", "PT", "NL", "BE", "PL", "SE", "NO",
                 "DK", "FI", "IE", "AT", "CH", "CZ", "GR", "HU", "RO", "US"]  # fmt: skip
    return pd.DataFrame({
        "email": pd.Series(emails[rng.integers(0, DISTINCT_EMAILS, n)], dtype=object),
        "txn": pd.array([f"TX-{k:08X}" for k in rng.integers(0, 2**32, n)], dtype="string[pyarrow]"),
        "country": pd.Categorical.from_codes(rng.integers(0, len(countries), n), categories=countries),
        "ts": pd.date_range("2024-01-01", periods=n, freq="37s", tz="Europe/Paris"),
        "amount": rng.lognormal(3, 1, n),
        "score": rng.uniform(0, 1, n),
    })  # fmt: skip


def side_by_side(obj, ours, theirs) -> tuple[list[float], list[float], set[str]]:
    """Alternating timings of ``ours(obj)`` and ``theirs(obj)`` after one untimed call each; our digests."""
    ours(obj)
    theirs(obj)
    mine, pandas_, digests = [], [], set()
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        digests.add(ours(obj))
        mine.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs(obj)
        pandas_.append(time.perf_counter() - t0)
    return mine, pandas_, digests


def main() -> None:
    from mlops_nb import fingerprint

    hash_rows = pd.util.hash_pandas_object
    t0 = time.perf_counter()
    df = make_frame()
    built = time.perf_counter() - t0
    size_gb = df.memory_usage(deep=True).sum() / 1e9
    print(f"{ROWS:,}-row frame, {df.shape[1]} columns, {size_gb:.2f} GB in memory (built in {built:.1f} s):")
    print("    " + ", ".join(f"{c} {df[c].dtype}" for c in df))
    print(f"    email: {df['email'].nunique():,} distinct; txn: {df['txn'].nunique():,} distinct")

    mine, pandas_, digests = side_by_side(df, fingerprint, hash_rows)
    if len(digests) != 1:
        raise SystemExit(f"fingerprint(df) gave {len(digests)} different digests for the same frame")
    ours_s, theirs_s = statistics.median(mine), statistics.median(pandas_)
    ratio = theirs_s / ours_s
    print(f"whole frame, median of {REPEATS} (alternating):")
    print(f"    hash_pandas_object(df)  {theirs_s:7.3f} s   (min {min(pandas_):.3f}, max {max(pandas_):.3f})")
    print(f"    mlops_nb.fingerprint    {ours_s:7.3f} s   (min {min(mine):.3f}, max {max(mine):.3f})   "
          f"ratio {ratio:.1f}x   [target >= {TARGET}x]")  # fmt: skip

    print(f"per column (a Series, index included), median of {REPEATS}:")
    print(f"    {'column':<8} {'dtype':<28} {'hash_pandas_object':>18} {'fingerprint':>12} {'ratio':>7}")
    for name in df:
        column = df[name]
        mine_c, pandas_c, _ = side_by_side(column, fingerprint, hash_rows)
        ours_c, theirs_c = statistics.median(mine_c), statistics.median(pandas_c)
        print(f"    {name:<8} {str(column.dtype):<28} {theirs_c * 1e3:15.1f} ms {ours_c * 1e3:9.1f} ms {theirs_c / ours_c:6.1f}x")

    _results.record("fingerprint 1M-row mixed text frame vs hash_pandas_object", ratio, unit="x", target=TARGET,
                    detail=f"hash_pandas_object {theirs_s:.3f} s, ours {ours_s:.3f} s ({size_gb:.2f} GB), "
                           f"median of {REPEATS}")  # fmt: skip


if __name__ == "__main__":
    main()
