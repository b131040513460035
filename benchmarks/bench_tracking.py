"""Tracking and data versioning, side by side with MLflow (the tracking anchor).

1. Cost of one run with 20 params and 20 metrics on a local SQLite registry.
2. Versioning a 1,000,000 × 25 DataFrame: time, and whether a change in row 500,000 yields a
   new version (MLflow's pandas dataset digest hashes only the first 10,000 rows).
3. Versioning a data file: DVC's way (MD5 of the content) against ours (xxh3-128, streamed).

Run: ``python benchmarks/bench_tracking.py`` (creates build/bench-mlflow-venv on first use).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import _results
from _anchor_env import anchor_python, ensure_ours, run_json

ensure_ours()

N_RUNS = 100
REPEATS = 3
ROWS, COLS = 1_000_000, 25

MLFLOW_RUNS = """
import json, sys, tempfile, time, logging
logging.disable(logging.WARNING)
import mlflow
n = int(sys.argv[1])
home = tempfile.mkdtemp()
mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
mlflow.set_experiment("bench")
with mlflow.start_run():  # warm-up: schema creation, imports, and the statements of a run like the timed ones
    mlflow.log_params({f"p{j}": j for j in range(20)})
    mlflow.log_metrics({f"m{j}": j / 3 for j in range(20)})
t0 = time.perf_counter()
for i in range(n):
    with mlflow.start_run():
        mlflow.log_params({f"p{j}": j * i for j in range(20)})
        mlflow.log_metrics({f"m{j}": j / (i + 1) for j in range(20)})
print(json.dumps({"per_run_ms": (time.perf_counter() - t0) / n * 1000}))
"""

MLFLOW_DIGEST = """
import json, sys, time, logging
logging.disable(logging.WARNING)
import pandas as pd, mlflow.data
df = pd.read_parquet(sys.argv[1])
t0 = time.perf_counter()
d1 = mlflow.data.from_pandas(df).digest
seconds = time.perf_counter() - t0
df.iloc[500_000, 0] += 1.0
d2 = mlflow.data.from_pandas(df).digest
print(json.dumps({"seconds": seconds, "digest": d1, "detects_change": d1 != d2}))
"""


OURS_RUNS = """
import json, os, sys, tempfile, time
home = tempfile.mkdtemp()
os.environ["MLOPS_NB_HOME"] = home
import mlops_nb
n = int(sys.argv[1])
with mlops_nb.track() as run:  # warm-up, as for MLflow
    run.log_params({f"p{j}": j for j in range(20)})
    for j in range(20):
        run.log_metric(f"m{j}", j / 3)
t0 = time.perf_counter()
for i in range(n):
    with mlops_nb.track() as run:
        run.log_params({f"p{j}": j * i for j in range(20)})
        for j in range(20):
            run.log_metric(f"m{j}", j / (i + 1))
print(json.dumps({"per_run_ms": (time.perf_counter() - t0) / n * 1000}))
"""


def schema_floor_ms(n: int) -> float:
    """The statements one ``track()`` run sends, replayed through ``sqlite3`` on a registry of
    ours (its indexes and foreign keys, the same pragmas): the database's share of a run."""
    import sqlite3

    import mlops_nb
    from mlops_nb import config
    from mlops_nb.store import clear_cache, get_store
    from sqlalchemy import event

    with tempfile.TemporaryDirectory() as home:
        os.environ["MLOPS_NB_HOME"] = home
        config.reset()
        clear_cache()
        with mlops_nb.track():
            pass
        sent: list[tuple[str, object, bool]] = []
        engine = get_store().engine
        listener = lambda conn, cursor, sql, params, context, many: sent.append((sql, params, many))  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        with mlops_nb.track() as run:
            run.log_params({f"p{j}": j for j in range(20)})
            for j in range(20):
                run.log_metric(f"m{j}", j / 3)
        event.remove(engine, "before_cursor_execute", listener)
        clear_cache()
        db = sqlite3.connect(f"{home}/registry.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            db.execute(f"PRAGMA {pragma}")
        swap = lambda row, new: tuple(new if v == run.id else v for v in row)  # noqa: E731
        t0 = time.perf_counter()
        for _ in range(n):
            new = os.urandom(16).hex()
            for sql, params, many in sent:
                if many:
                    db.executemany(sql, [swap(row, new) for row in params])
                else:
                    db.execute(sql, swap(params, new) if params else ())
            db.execute("COMMIT")
        per_run = (time.perf_counter() - t0) / n * 1000
        db.close()
    return per_run


def sqlite_floor_ms(n: int) -> float:
    """The same 60 rows per run written straight through ``sqlite3`` (WAL, synchronous=NORMAL,
    one transaction per run, a minimal schema): what any SQLite-backed tracker pays at least."""
    import sqlite3

    with tempfile.TemporaryDirectory() as home:
        db = sqlite3.connect(f"{home}/floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, status TEXT, start REAL, end REAL, env TEXT)")
        db.execute("CREATE TABLE params (run_id TEXT, key TEXT, value TEXT, PRIMARY KEY (run_id, key))")
        db.execute("CREATE TABLE metrics (run_id TEXT, key TEXT, value REAL, step INT, ts REAL)")
        db.execute("CREATE TABLE latest (run_id TEXT, key TEXT, value REAL, PRIMARY KEY (run_id, key))")
        t0 = time.perf_counter()
        for i in range(n):
            run_id = os.urandom(16).hex()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO runs VALUES (?, 'finished', ?, ?, ?)", (run_id, time.time(), time.time(), "{}"))
            db.executemany("INSERT INTO params VALUES (?, ?, ?)", [(run_id, f"p{j}", str(j * i)) for j in range(20)])
            db.executemany("INSERT INTO metrics VALUES (?, ?, ?, NULL, ?)",
                           [(run_id, f"m{j}", j / (i + 1), time.time()) for j in range(20)])  # fmt: skip
            db.executemany("INSERT INTO latest VALUES (?, ?, ?)", [(run_id, f"m{j}", j / (i + 1)) for j in range(20)])
            db.execute("COMMIT")
        per_run = (time.perf_counter() - t0) / n * 1000
        db.close()
    return per_run


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {f"num{i}": rng.normal(size=ROWS) for i in range(20)}
    cats = np.array(["red", "green", "blue", "black", "white"])
    data.update({f"cat{i}": pd.Categorical(cats[rng.integers(0, 5, ROWS)]) for i in range(5)})
    return pd.DataFrame(data)


def main() -> None:
    mlflow_python = anchor_python("mlflow", ["mlflow>=3"])
    print(f"[1] one run with 20 params + 20 metrics, SQLite, {N_RUNS} runs")
    # Each tool in a fresh process of its own, alternating, median of REPEATS.
    theirs_all, ours_all = [], []
    for _ in range(REPEATS):
        theirs_all.append(run_json(mlflow_python, MLFLOW_RUNS, str(N_RUNS))["per_run_ms"])
        ours_all.append(run_json(Path(sys.executable), OURS_RUNS, str(N_RUNS))["per_run_ms"])
    theirs, ours = statistics.median(theirs_all), statistics.median(ours_all)
    floor = sqlite_floor_ms(N_RUNS)
    ours_db = schema_floor_ms(N_RUNS)
    print(f"    mlflow   {theirs:8.2f} ms/run   ({', '.join(f'{t:.2f}' for t in theirs_all)})")
    print(f"    mlops_nb {ours:8.2f} ms/run   ({', '.join(f'{t:.2f}' for t in ours_all)})   ratio mlflow/mlops_nb = {theirs / ours:.2f}x")
    print(f"    sqlite3  {ours_db:8.2f} ms/run   our statements of a run replayed on our schema (its indexes)")
    print(f"    sqlite3  {floor:8.2f} ms/run   the same rows on a minimal schema, one transaction each, no tracker at all")
    _results.record("track() 20 params + 20 metrics vs MLflow", theirs / ours, unit="x", target=20,
                    detail=f"MLflow {theirs:.1f} ms/run, ours {ours:.2f} ms/run (SQLite, {N_RUNS} runs, median of {REPEATS} "
                           f"fresh processes each); "
                           f"our statements alone through sqlite3 {ours_db:.2f} ms/run, "
                           f"the rows on a minimal schema {floor:.2f} ms/run")  # fmt: skip

    print(f"[2] versioning a {ROWS:,} x {COLS} DataFrame (20 float, 5 categorical)")
    df = frame()
    from mlops_nb import fingerprint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.parquet"
        df.to_parquet(path)
        mlflow_digest = run_json(mlflow_python, MLFLOW_DIGEST, str(path))
    t0 = time.perf_counter()
    d1 = fingerprint(df)
    ours_s = time.perf_counter() - t0
    df.iloc[500_000, 0] += 1.0
    ours_detects = fingerprint(df) != d1
    size_gb = df.memory_usage(deep=True).sum() / 1e9
    print(f"    mlflow   {mlflow_digest['seconds']:8.3f} s  hashes first 10,000 rows only; "
          f"detects a change in row 500,000: {mlflow_digest['detects_change']}; digest {len(mlflow_digest['digest'])} hex chars")
    print(f"    mlops_nb {ours_s:8.3f} s  whole frame ({size_gb:.2f} GB, {size_gb / ours_s:.1f} GB/s); "
          f"detects it: {ours_detects}; digest {len(d1)} hex chars")
    again = []  # the first call above also registers the encoders: the throughput is the calls after it
    for _ in range(5):
        t0 = time.perf_counter()
        fingerprint(df)
        again.append(time.perf_counter() - t0)
    warm_s = statistics.median(again)
    print(f"    mlops_nb {warm_s:8.3f} s  called again, median of 5 ({size_gb / warm_s:.1f} GB/s)")
    _results.record("1M x 25 frame fingerprint, whole frame", size_gb / warm_s, unit="GB/s", target=None,
                    detail=f"{warm_s:.3f} s for {size_gb:.2f} GB, median of 5 after a first call of {ours_s:.3f} s; "
                           f"MLflow's digest {mlflow_digest['seconds']:.2f} s for its first 10,000 rows")  # fmt: skip
    print("[3] versioning a 0.64 GB data file (DVC-style MD5 of the content vs ours)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.bin"
        chunk = df.iloc[:, :20].to_numpy(dtype="float64").tobytes()
        with open(path, "wb") as f:
            for _ in range(4):
                f.write(chunk)
        t0 = time.perf_counter()
        md5 = hashlib.md5()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                md5.update(block)
        md5_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fingerprint(path)
        file_s = time.perf_counter() - t0
        gb = path.stat().st_size / 1e9
    print(f"    md5 (DVC) {md5_s:7.3f} s  ({gb / md5_s:.2f} GB/s)")
    print(f"    mlops_nb  {file_s:7.3f} s  ({gb / file_s:.2f} GB/s)   ratio md5/mlops_nb = {md5_s / file_s:.1f}x")
    _results.record("data file hash vs DVC md5", md5_s / file_s, unit="x", target=None,
                    detail=f"md5 {md5_s:.3f} s, ours {file_s:.3f} s for {gb:.2f} GB")
    print(json.dumps({"tracking_ratio": theirs / ours, "mlflow_ms": theirs, "ours_ms": ours,
                      "fingerprint_s": ours_s, "mlflow_digest_s": mlflow_digest["seconds"],
                      "mlflow_detects_change": mlflow_digest["detects_change"], "ours_detects_change": ours_detects, "file_hash_ratio": md5_s / file_s}))


if __name__ == "__main__":
    main()
