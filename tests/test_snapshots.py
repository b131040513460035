"""Snapshots (issue 20): data versions come back exactly, chunks are shared across versions,
damaged chunks are named, gc keeps what a concurrent writer relies on.

Real stores throughout: a SQLite file and a local folder, and PostgreSQL + an S3 server (moto).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

import mlops_nb
from mlops_nb.data import gc as data_gc
from mlops_nb.errors import SnapshotError, SnapshotMissing
from mlops_nb.fingerprint import fingerprint
from mlops_nb.snapshots.storage import read_snapshot, write_snapshot
from mlops_nb.store import get_store


def _frames() -> dict[str, object]:
    rng = np.random.default_rng(0)
    n = 500
    base = pd.DataFrame({
        **{f"i{b}": rng.integers(-100, 100, n).astype(f"int{b}") for b in (8, 16, 32, 64)},
        **{f"u{b}": rng.integers(0, 200, n).astype(f"uint{b}") for b in (8, 16, 32, 64)},
        "f32": rng.normal(size=n).astype("float32"), "f64": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "f16": rng.normal(size=n).astype("float16"), "flag": rng.random(n) < 0.5,
        "Int64": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64"),
        "boolean": pd.array(np.where(rng.random(n) < 0.2, None, rng.random(n) < 0.5), dtype="boolean"),
        "Float64": pd.array(np.where(rng.random(n) < 0.2, None, rng.random(n)), dtype="Float64"),
        "obj": np.where(rng.random(n) < 0.1, None, rng.choice(["a", "béta", "😀", ""], n)).astype(object),
        "spy": pd.array(rng.choice(["x", "y", None], n), dtype="string[python]"),
        "sarrow": pd.array(rng.choice(["x", "y", None], n), dtype="string[pyarrow]"),
        "cat": pd.Categorical(rng.choice(["lo", "mid", "hi", None], n), categories=["lo", "mid", "hi"], ordered=True),
        "ts": pd.date_range("2021-03-28", periods=n, freq="37min"),
        "tz": pd.date_range("2021-03-28", periods=n, freq="37min", tz="Europe/Paris"),
        "td": pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
    })  # fmt: skip
    return {
        "mixed frame": base,
        "named index": base.set_index(pd.Index(rng.permutation(n), name="row_id")),
        "datetime index": base.iloc[:, :3].set_index(pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC")),
        "multi index": base.set_index(["i8", "obj"]),
        "range index with step": base.iloc[:, :4].set_axis(pd.RangeIndex(10, 10 + 3 * n, 3)),
        "non-string column names": pd.DataFrame({1: [1.0, 2.0], 2.5: ["a", "b"]}),
        "empty rows": base.iloc[:0],
        "series named": base["f64"].rename("price"),
        "series unnamed": pd.Series(np.arange(7), name=None),
        "series categorical": base["cat"],
        "array 1-d": rng.normal(size=1000),
        "array 3-d int": rng.integers(0, 5, (20, 3, 4)),
        "array datetime64": np.arange("2020-01", "2022-01", dtype="datetime64[D]"),
        "array structured": np.array([(1, 2.5), (3, 4.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
        "array bool": rng.random(33) < 0.5,
        "array complex": rng.normal(size=8) + 1j * rng.normal(size=8),
        "array 0-d": np.array(3.5),
        "array empty": np.zeros((0, 4)),
    }


@pytest.mark.parametrize("label", list(_frames()))
def test_every_kind_round_trips_to_the_same_fingerprint(store, label):
    obj = _frames()[label]
    digest = fingerprint(obj)
    write_snapshot(obj, digest, store)
    back = read_snapshot(digest, store)  # read_snapshot asserts the fingerprint itself
    assert fingerprint(back) == digest
    assert type(back) is type(obj)
    if isinstance(obj, pd.DataFrame):
        pd.testing.assert_frame_equal(back, obj)
    elif isinstance(obj, pd.Series):
        pd.testing.assert_series_equal(back, obj)
    else:
        assert back.dtype == obj.dtype and back.shape == obj.shape


def test_objects_arrow_cannot_store_say_so(store):
    mixed = pd.DataFrame({"x": [1, "a", 2.5]})
    with pytest.raises(SnapshotError, match="cannot store one of its columns"):
        write_snapshot(mixed, fingerprint(mixed), store)
    with pytest.raises(SnapshotError, match="array of Python objects"):
        arr = np.array([{"a": 1}], dtype=object)
        write_snapshot(arr, fingerprint(arr), store)


def _big(n: int = 200_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        **{f"x{i}": rng.normal(size=n) for i in range(8)},
        "k": rng.integers(0, 10**9, n), "s": rng.choice([f"user{i}@example.com" for i in range(5000)], n).astype(object),
        "c": pd.Categorical(rng.choice(list("abcd"), n)),
    })  # fmt: skip


def test_edits_store_only_the_chunks_they_touch(store, monkeypatch):
    from mlops_nb.snapshots import chunking

    # 200k rows with chunks a quarter of the default: the proportions of 1M rows at the default
    monkeypatch.setattr(chunking, "TARGET_CHUNK_BYTES", 1 << 18)
    df = _big()
    first = write_snapshot(df, fingerprint(df), store)
    assert len(first["chunk_list"]) >= 60
    total = first["stored_bytes"]

    def new_share(frame: pd.DataFrame) -> float:
        row = write_snapshot(frame, fingerprint(frame), store)
        assert read_snapshot(row["digest"], store).equals(frame)
        return row["new_bytes"] / total

    edited = df.copy()
    edited.iloc[123_456, 0] = -1.0
    appended = pd.concat([df, df.iloc[:2_000]], ignore_index=True)  # +1 % rows
    inserted = pd.concat([df.iloc[:100_000], df.iloc[:100].assign(k=-1), df.iloc[100_000:]], ignore_index=True)
    shares = {"edit": new_share(edited), "append": new_share(appended), "insert": new_share(inserted)}
    # a whole-file copy (DVC's unit of deduplication) would be 1.0 each
    assert shares["edit"] <= 0.02, shares
    assert shares["append"] <= 0.03, shares
    assert shares["insert"] <= 0.03, shares
    assert write_snapshot(df, fingerprint(df), store)["new_bytes"] == 0  # the same version again: nothing


def test_chunk_bytes_depend_on_the_rows_only(store, monkeypatch):
    """A frame whose pyarrow-string column is two Arrow chunks (pd.concat) has the same chunks as its one-piece twin,
    and a chunk's rows have the same bytes wherever they sit (Arrow's writer pads a slice with its neighbours' bytes)."""
    from mlops_nb.snapshots import chunking
    from mlops_nb.snapshots.storage import upload_snapshot

    monkeypatch.setattr(chunking, "TARGET_CHUNK_BYTES", 1 << 16)
    rng = np.random.default_rng(4)
    n = 20_000
    whole = pd.DataFrame({
        "x": rng.normal(size=n), "s": pd.array([f"s{k}" for k in rng.integers(0, 10**6, n)], dtype="string[pyarrow]"),
        "o": np.array([f"user{k}" for k in rng.integers(0, 999, n)], dtype=object), "i8": rng.integers(0, 9, n).astype("int8"),
        "b": rng.random(n) < 0.5, "n": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
        "c": pd.Categorical(rng.choice(["lo", "hi"], n)),
    })  # fmt: skip
    halves = pd.concat([whole.iloc[: n // 2 + 7], whole.iloc[n // 2 + 7 :]], ignore_index=True)
    assert halves["s"].array._pa_array.num_chunks == 2
    digest = fingerprint(whole)
    _, one = upload_snapshot(whole, digest, store.artifacts)
    _, two = upload_snapshot(halves, digest, store.artifacts)
    assert len(one) > 3 and one == two
    # the rows of the first chunk alone: they end their buffers, where the whole frame's go on
    first = whole.iloc[: one[0]["rows"]].copy()
    _, alone = upload_snapshot(first, fingerprint(first), store.artifacts)
    assert alone == one[:1]


def test_files_are_cut_by_content(store, tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "data.bin"
    payload = rng.integers(0, 256, 24_000_000, dtype=np.uint8).tobytes()
    path.write_bytes(payload)
    first = write_snapshot(path, fingerprint(path), store)
    assert len(first["chunk_list"]) >= 10
    path.write_bytes(payload[:12_000_000] + b"inserted bytes" + payload[12_000_000:])
    second = write_snapshot(path, fingerprint(path), store)
    assert second["new_bytes"] < 0.2 * first["stored_bytes"]  # whole-file versioning: 100 %
    assert read_snapshot(second["digest"], store) == path.read_bytes()


def test_damaged_or_missing_chunks_are_named(store):
    df = _big(50_000)
    digest = fingerprint(df)
    row = write_snapshot(df, digest, store)
    victim = row["chunk_list"][1]["chunk"]
    path = store.artifacts.path(victim)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(SnapshotMissing, match=rf"Chunk 2 of {len(row['chunk_list'])} \({victim[:12]}\).*{digest[:12]}"):
        read_snapshot(digest, store)
    import os

    os.remove(path)
    with pytest.raises(SnapshotMissing, match="missing"):
        read_snapshot(digest, store)


def test_snapshots_with_parquet_chunks_still_load(store):
    """Snapshots written before chunks were Arrow IPC streams (no chunk_format in the manifest) still load."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_nb.snapshots import tables

    df = _frames()["mixed frame"]
    digest = fingerprint(df)
    table, meta = tables.to_table(df)
    chunks = []
    for start, stop in ((0, 200), (200, len(df))):
        sink = pa.BufferOutputStream()
        pq.write_table(table.slice(start, stop - start), sink, compression="lz4", write_statistics=False)
        data = sink.getvalue().to_pybytes()
        chunks.append({"chunk": store.artifacts.put_bytes(data), "rows": stop - start, "size": len(data)})
    manifest = {"format": "mlops_nb-snapshot-v1", "digest": digest, **meta, "schema": tables.schema_bytes(table.schema),
                "rows": len(df), "nbytes": int(table.nbytes), "chunks": chunks}  # fmt: skip
    row = {"digest": digest, "manifest": store.artifacts.put_bytes(json.dumps(manifest).encode()), "kind": "dataframe",
           "rows": len(df), "nbytes": int(table.nbytes), "stored_bytes": sum(c["size"] for c in chunks)}  # fmt: skip
    store.record_snapshot(row, chunks, version={"kind": "dataframe"})
    pd.testing.assert_frame_equal(read_snapshot(digest, store), df)


def test_tracked_script_snapshots_inputs_and_registering_pins_them(mlops_home):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    with mlops_nb.track(name="fit", inputs={"X": X, "y": y}) as run:
        model = LogisticRegression(max_iter=500).fit(X, y)
        run.log_metric("accuracy", model.score(X, y))
        run.log_model(model)
    X.iloc[0, 0] = 99.0  # the caller changes its frame after the run: the snapshot is of the run's version
    mlops_nb.sync()
    back = mlops_nb.load_data(f"run:{run.id[:8]}/X")
    assert back.iloc[0, 0] != 99.0 and fingerprint(back) == run.inputs["X"]["digest"]
    both = mlops_nb.load_data(f"run:{run.id}")
    assert set(both) == {"X", "y"}
    mlops_nb.register(model, name="iris", alias="staging")
    store = get_store()
    assert store.get_snapshot(run.inputs["X"]["digest"])["pinned"]
    train = mlops_nb.load_data("model:iris@staging/train")
    pd.testing.assert_series_equal(train["y"], y)
    # nothing is collected: the versions are a registered model's training data, however old
    assert data_gc(keep_days=0)["versions"] == 0


def test_runs_without_results_and_snapshots_off_keep_fingerprints_only(mlops_home):
    df = pd.DataFrame({"a": range(10)})
    with mlops_nb.track(name="look", inputs={"df": df}) as quiet:
        pass
    mlops_nb.configure(snapshots=False)
    with mlops_nb.track(name="off", inputs={"df2": df.assign(b=1)}) as off:
        off.log_metric("rows", 10)
    mlops_nb.configure(snapshots=True, snapshot_max="10B")
    with mlops_nb.track(name="big", inputs={"df3": df.assign(c=2)}) as big:
        big.log_metric("rows", 10)
    mlops_nb.sync()
    store = get_store()
    for run, name in ((quiet, "df"), (off, "df2"), (big, "df3")):
        assert store.get_snapshot(run.inputs[name]["digest"]) is None
    assert any("not snapshotted: over the 10 B per run" in w for w in big.warnings)
    with pytest.raises(SnapshotMissing, match="has no snapshot"):
        mlops_nb.load_data(f"run:{off.id}/df2")
    forced = mlops_nb.snapshot(df, name="forced")
    assert mlops_nb.load_data(forced).equals(df)


def test_bad_references_say_what_to_write(store):
    for ref, message in (("nonsense", "use data:DIGEST"), ("table:abc", "Unknown data reference kind"),
                         ("data:abcdef123456", "data version"), ("run:deadbeef/x", "deadbeef")):  # fmt: skip
        with pytest.raises(SnapshotError, match=message):
            mlops_nb.load_data(ref, store=store)


def test_gc_removes_unkept_chunks_and_spares_a_concurrent_writer(store):
    base = _big(40_000)
    keep = write_snapshot(base, fingerprint(base), store)
    stop, errors, written = threading.Event(), [], []

    def writer() -> None:  # new versions sharing most chunks with those gc is removing
        i = 0
        while not stop.is_set():
            frame = base.copy()
            frame.iloc[i % len(frame), 0] = float(i)
            try:
                written.append(write_snapshot(frame, fingerprint(frame), store)["digest"])
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    removed = 0
    try:
        deadline = time.time() + 8
        while time.time() < deadline:
            removed += data_gc(keep_days=0, store=store)["versions"]
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert removed > 0 and written
    survivors = [d for d in written + [keep["digest"]] if store.get_snapshot(d) is not None]
    assert survivors
    for digest in survivors:  # every snapshot still recorded reads back whole
        assert fingerprint(read_snapshot(digest, store)) == digest
    done = data_gc(keep_days=0, store=store)
    assert all(store.get_snapshot(d) is None for d in survivors) and done["versions"] == len(survivors)
    assert not [p for p in store.artifacts.digests()]  # every chunk and manifest is gone


def test_team_backend_postgresql_and_s3(pg_database, s3_bucket, mlops_home, monkeypatch):
    from mlops_nb.snapshots import chunking

    monkeypatch.setattr(chunking, "TARGET_CHUNK_BYTES", 1 << 16)  # a few dozen chunks of 30k rows
    store = get_store(pg_database, f"s3://{s3_bucket}/artifacts")
    df = _big(30_000)
    digest = fingerprint(df)
    write_snapshot(df, digest, store)
    edited = df.copy()
    edited.iloc[5, 2] = 0.0
    row = write_snapshot(edited, fingerprint(edited), store)
    assert 0 < row["new_bytes"] < 0.15 * row["stored_bytes"]
    pd.testing.assert_frame_equal(read_snapshot(digest, store), df)
    assert data_gc(keep_days=0, store=store)["versions"] == 2
    assert list(store.artifacts.digests()) == []


def test_tracked_cells_in_a_kernel_snapshot_what_they_read(store, tmp_path, kernel_env):
    """A real kernel: a cell's DataFrame input and data reached through an attribute
    (``digits.data``) are snapshotted off the cell's path, and come back exactly."""
    import nbformat
    from capture_kernel import run_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "%load_ext mlops_nb",
        "import pandas as pd\nfrom sklearn.datasets import load_digits\ndigits = load_digits()\n"
        "df = pd.DataFrame(digits.data[:, :8]).add_prefix('px')",
        "%%mlops track --name bunch\nfrom sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression(max_iter=200).fit(digits.data, digits.target)\naccuracy = model.score(digits.data, digits.target)",
        "%%mlops track --name frame\nfrom sklearn.tree import DecisionTreeClassifier\n"
        "tree = DecisionTreeClassifier(random_state=0).fit(df, digits.target)",
        "df.iloc[0, 0] = -1.0  # changed after the run: the snapshot keeps the run's version",
    )]  # fmt: skip
    run_notebook(nb, env=kernel_env, cwd=tmp_path)
    runs = {r["name"]: store.get_run(r["id"]) for r in store.list_runs()}
    bunch = {i["name"]: i for i in runs["bunch"]["inputs"]}
    assert set(bunch) >= {"digits.data", "digits.target"}, bunch
    assert all(i["snapshot"] for i in bunch.values())
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.testing.assert_array_equal(mlops_nb.load_data(f"run:{runs['bunch']['id']}/digits.data", store=store), digits.data)
    frame = mlops_nb.load_data(f"run:{runs['frame']['id']}/df", store=store)
    assert frame.iloc[0, 0] == digits.data[0, 0] and frame.shape == (1797, 8)


def test_a_scripts_last_run_keeps_its_snapshot_at_exit(mlops_home, kernel_env, tmp_path):
    """The snapshot thread finishes before the interpreter refuses new thread pools (pyarrow's
    from_pandas uses one for a large frame): a script ending right after its run loses nothing."""
    import subprocess
    import sys

    script = tmp_path / "last.py"
    script.write_text(
        "import numpy as np, pandas as pd, mlops_nb\n"
        "train = pd.DataFrame(np.random.default_rng(1).normal(size=(100_000, 8)), columns=list('abcdefgh'))\n"
        "with mlops_nb.track(name='last', inputs={'train': train}):\n"
        "    mlops_nb.log_metric('rows', len(train))\n"
    )
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=kernel_env, timeout=300)
    assert ran.returncode == 0 and "not snapshotted" not in ran.stderr, ran.stderr
    store = get_store()
    [row] = store.list_runs()
    digest = store.get_run(row["id"])["inputs"][0]["digest"]
    assert store.get_snapshot(digest) is not None
    assert fingerprint(mlops_nb.load_data(f"run:{row['id']}/train", store=store)) == digest


def test_every_chunk_name_is_on_disk_before_a_manifest_names_it(tmp_path, monkeypatch):
    """A crash after the manifest is written must not leave it naming a chunk whose rename was lost:
    each folder holding a new chunk is fsynced once, after the chunks and before the manifest."""
    from mlops_nb.snapshots.storage import upload_snapshot
    from mlops_nb.store import artifacts as artifacts_module
    from mlops_nb.store.artifacts import ArtifactStore

    events: list[tuple[str, str]] = []
    real_sync, real_add = artifacts_module._fsync_folder, ArtifactStore.add
    monkeypatch.setattr(artifacts_module, "_fsync_folder", lambda folder: events.append(("sync", folder)) or real_sync(folder))

    def add(self, data, digest=None, *, sync_folder=True):
        found = real_add(self, data, digest, sync_folder=sync_folder)
        events.append(("add", found[0]))
        return found

    monkeypatch.setattr(ArtifactStore, "add", add)
    store = ArtifactStore(str(tmp_path / "artifacts"))
    frame = pd.DataFrame({"x": np.arange(300_000), "s": [f"row {i}" for i in range(300_000)]})
    row, chunks = upload_snapshot(frame, fingerprint(frame), store)
    assert len(chunks) > 3
    manifest_at = events.index(("add", row["manifest"]))
    synced_before = {folder for kind, folder in events[:manifest_at] if kind == "sync"}
    assert {store.path(c["chunk"]).rsplit("/", 1)[0] for c in chunks} <= synced_before
    folder_syncs = [folder for kind, folder in events[:manifest_at] if kind == "sync" and folder != store.root]
    assert len(folder_syncs) == len(set(folder_syncs))  # once per folder, not once per chunk
    assert ("sync", store.path(row["manifest"]).rsplit("/", 1)[0]) in events[manifest_at - 1:]  # and its own
