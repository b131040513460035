"""Tests for mlops_nb.fingerprint: real data, no mocks."""

from __future__ import annotations

import datetime
import decimal
import enum
import gc
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import xxhash

from mlops_nb.errors import FingerprintError
from mlops_nb.fingerprint import (
    data_kind,
    describe,
    fingerprint,
    fingerprint_path,
    is_fitted_estimator,
)

from mlops_nb.fingerprint import arrays as fp_arrays
from mlops_nb.fingerprint import arrow as fp_arrow
from mlops_nb.fingerprint import cache as fp_cache

# (id, values, dtype, missing value or None, replacement candidates)
CASES = (
    [(dt, [1, 2, 3, 4], dt, None, (9, 8)) for dt in
     ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")]
    + [(dt, [1.5, np.nan, -2.0, 0.25], dt, np.nan, (7.5, 6.5)) for dt in ("float16", "float32", "float64")]
    + [("complex128", [1 + 2j, 3j, np.nan, 0j], "complex128", None, (5j, 4j))]
    + [("bool", [True, False, True], "bool", None, (False, True))]
    + [(dt, [1, pd.NA, 3, 0], dt, pd.NA, (9, 8)) for dt in ("Int8", "Int64", "UInt16")]
    + [(dt, [1.5, pd.NA, -3.0], dt, pd.NA, (9.5, 8.5)) for dt in ("Float32", "Float64")]
    + [("boolean", [True, pd.NA, False], "boolean", pd.NA, (False, True))]
    + [
        ("datetime64[ns]", [pd.Timestamp("2020-01-01"), pd.NaT, pd.Timestamp("2020-01-02 03:04:05.000000001")],
         "datetime64[ns]", pd.NaT, (pd.Timestamp("2021-05-05"), pd.Timestamp("2021-05-06"))),
        ("datetime64[s]", [pd.Timestamp("2020-01-01"), pd.NaT], "datetime64[s]", pd.NaT,
         (pd.Timestamp("1999-01-01"), pd.Timestamp("1999-01-02"))),
        ("datetime64[ns, Europe/Paris]",
         [pd.Timestamp("2020-03-29 01:30", tz="Europe/Paris"), pd.NaT, pd.Timestamp("2020-10-25 02:30", tz="UTC")],
         "datetime64[ns, Europe/Paris]", pd.NaT,
         (pd.Timestamp("2021-01-01", tz="Europe/Paris"), pd.Timestamp("2021-01-02", tz="Europe/Paris"))),
        ("timedelta64[ns]", [pd.Timedelta("1D"), pd.NaT, pd.Timedelta(1)], "timedelta64[ns]", pd.NaT,
         (pd.Timedelta("2h"), pd.Timedelta("3h"))),
        ("category", ["a", "b", None, "a"], pd.CategoricalDtype(["a", "b", "c"]), None, ("c", "b")),
        ("category-ordered", ["a", "b", None, "a"], pd.CategoricalDtype(["b", "a", "c"], ordered=True), None,
         ("c", "b")),
        ("object-str", ["a", "bb", None, "ccc", "é€😀"], object, None, ("zz", "yy")),
        ("object-mixed", [1, "1", 1.0, True, None, b"1", (1, 2), decimal.Decimal("1.5"), 2**80, np.nan],
         object, None, ("q", "r")),
        ("string[python]", ["a", "bb", None, "ccc"], "string[python]", pd.NA, ("zz", "yy")),
        ("string[pyarrow]", ["a", "bb", None, "ccc"], "string[pyarrow]", pd.NA, ("zz", "yy")),
        ("str", ["a", "bb", None, "ccc"], "str", None, ("zz", "yy")),
        ("str-python", ["a", "bb", None, "ccc"], pd.StringDtype("python", na_value=np.nan), None, ("zz", "yy")),
        ("arrow-int64", [1, None, 3], pd.ArrowDtype(pa.int64()), None, (9, 8)),
        ("arrow-float64", [1.5, None, np.nan], pd.ArrowDtype(pa.float64()), None, (9.5, 8.5)),
        ("arrow-bool", [True, None, False], pd.ArrowDtype(pa.bool_()), None, (False, True)),
        ("arrow-string", ["a", None, "ccc", ""], pd.ArrowDtype(pa.string()), None, ("zz", "yy")),
        ("arrow-large-binary", [b"a", None, b"\x00"], pd.ArrowDtype(pa.large_binary()), None, (b"zz", b"yy")),
        ("arrow-timestamp-tz", [pd.Timestamp("2020-01-01", tz="UTC"), None],
         pd.ArrowDtype(pa.timestamp("us", tz="UTC")), None,
         (pd.Timestamp("2021-01-01", tz="UTC"), pd.Timestamp("2022-01-01", tz="UTC"))),
        ("arrow-decimal", [decimal.Decimal("1.25"), None], pd.ArrowDtype(pa.decimal128(6, 2)), None,
         (decimal.Decimal("2.50"), decimal.Decimal("3.50"))),
        ("arrow-list", [[1, 2], None, []], pd.ArrowDtype(pa.list_(pa.int64())), None, ([3], [4])),
        ("period[M]", [pd.Period("2020-01", "M"), pd.NaT], "period[M]", pd.NaT,
         (pd.Period("2021-01", "M"), pd.Period("2022-01", "M"))),
        ("interval", [pd.Interval(0, 1), pd.Interval(1, 3)], "interval[int64, right]", None,
         (pd.Interval(0, 2), pd.Interval(5, 6))),
        ("sparse", [0.0, 0.0, 1.5, np.nan], pd.SparseDtype("float64", 0.0), np.nan, (2.5, 3.5)),
    ]
)


def _frame(values: list, dtype: object, index: list | None = None, name: str = "col") -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype=dtype, index=index)})


def _same(a: object, b: object) -> bool:
    """Cell equality for choosing a replacement value (NA == NA)."""
    try:
        if pd.isna(a) and pd.isna(b):
            return True
    except (TypeError, ValueError):
        pass
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_dtype_detects_single_changes(case: tuple) -> None:
    _, values, dtype, missing, others = case
    df = _frame(values, dtype)
    digest = fingerprint(df)
    assert len(digest) == 32 and int(digest, 16) >= 0
    # Equal content built differently.
    assert fingerprint(df.copy(deep=True)) == digest
    assert fingerprint(pickle.loads(pickle.dumps(df))) == digest
    assert fingerprint(_frame(list(values), dtype)) == digest
    variants = {repr(values): digest}
    for i, old in enumerate(values):
        changed = list(values)
        changed[i] = others[0] if not _same(old, others[0]) else others[1]
        variants[repr(changed)] = fingerprint(_frame(changed, dtype))
        if missing is not None or dtype is object:  # value -> NA and NA -> value
            changed[i] = missing if not pd.isna(old) else others[1]
            variants[repr(changed)] = fingerprint(_frame(changed, dtype))
    assert len(set(variants.values())) == len(variants), "a single-cell change did not change the digest"
    # Dtype, column name and index label are part of the version.
    # ("str" is object dtype in pandas 2 and a string dtype in pandas 3)
    other_dtype = "string[python]" if df["col"].dtype == object else object
    assert fingerprint(df.astype(other_dtype)) != digest
    assert fingerprint(df.rename(columns={"col": "col2"})) != digest
    index = list(range(len(values)))
    index[-1] = 100
    assert fingerprint(_frame(values, dtype, index=index)) != digest
    # The Series alone also works and differs from the frame.
    assert fingerprint(df["col"]) not in (digest, fingerprint(df["col"].rename("x")))


def test_numeric_dtype_changes_with_equal_values() -> None:
    values = [1, 2, 3]
    digests = {fingerprint(pd.DataFrame({"a": pd.Series(values, dtype=dt)}))
               for dt in ("int8", "int32", "int64", "uint64", "float32", "float64", "Int64", "Float64",
                          "category", object, pd.ArrowDtype(pa.int64()))}
    assert len(digests) == 11
    strings = ["a", "b", None]
    series = [pd.Series(strings, dtype=dt)
              for dt in (object, "string[python]", "string[pyarrow]", "str", pd.ArrowDtype(pa.string()),
                         pd.ArrowDtype(pa.large_string()), "category")]
    # one version per distinct dtype ("str" is object dtype in pandas 2, its own dtype in pandas 3)
    assert len({fingerprint(s) for s in series}) == len({(type(s.dtype), repr(s.dtype)) for s in series}) >= 6


def test_timezone_is_part_of_the_version() -> None:
    utc = pd.Series(pd.date_range("2020-01-01", periods=5, freq="h", tz="UTC"))
    paris = utc.dt.tz_convert("Europe/Paris")  # same instants, other tz
    naive = utc.dt.tz_localize(None)
    assert len({fingerprint(utc), fingerprint(paris), fingerprint(naive)}) == 3
    assert fingerprint(utc.dt.as_unit("ns")) != fingerprint(utc.dt.as_unit("us"))


def test_masked_value_under_na_does_not_matter() -> None:
    mask = np.array([False, True, False])
    a = pd.arrays.IntegerArray(np.array([1, 2, 3]), mask)
    b = pd.arrays.IntegerArray(np.array([1, 99, 3]), mask)
    assert fingerprint(pd.Series(a)) == fingerprint(pd.Series(b))
    fa = pd.arrays.FloatingArray(np.array([1.0, 2.0]), np.array([True, False]))
    fb = pd.arrays.FloatingArray(np.array([-5.0, 2.0]), np.array([True, False]))
    assert fingerprint(fa) == fingerprint(fb)
    ma = np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])
    mb = np.ma.array([1.0, 7.0, 3.0], mask=[False, True, False])
    assert fingerprint(ma) == fingerprint(mb) != fingerprint(np.ma.array([1.0, 7.0, 3.0]))


def test_nan_payloads_are_canonical() -> None:
    a = np.array([1.0, np.nan, 2.0])
    b = a.copy()
    b.view(np.uint64)[1] = 0xFFF8000000000001  # another NaN bit pattern
    assert np.isnan(b[1])
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(pd.DataFrame({"x": a})) == fingerprint(pd.DataFrame({"x": b}))
    assert fingerprint(float("nan")) == fingerprint(-float("nan"))


def test_arrow_chunking_and_slicing_do_not_matter() -> None:
    whole = pa.array(["a", None, "bcd", "", "é", None, "xyz"])
    chunked = pa.chunked_array([whole.slice(0, 2), whole.slice(2, 3), whole.slice(5)])
    padded = pa.array(["zzz", "a", None, "bcd", "", "é", None, "xyz", "www"]).slice(1, 7)
    digests = {fingerprint(pd.Series(pd.arrays.ArrowExtensionArray(x)))
               for x in (whole, chunked, padded, pa.chunked_array([whole]))}
    assert len(digests) == 1
    ints = pa.array([1, None, 3, 4, 5], pa.int64())
    assert fingerprint(ints) == fingerprint(pa.chunked_array([ints.slice(0, 1), ints.slice(1)]))
    assert fingerprint(ints) != fingerprint(pa.array([1, 0, 3, 4, 5], pa.int64()))
    bools = pa.array([True, None, False, True])
    assert fingerprint(bools.slice(1)) == fingerprint(pa.chunked_array([bools.slice(1, 1), bools.slice(2)]))
    dictionary = pa.array(["x", "y", "x"]).dictionary_encode()
    assert fingerprint(dictionary) != fingerprint(dictionary.dictionary_decode())  # type differs
    assert fp_arrow.arrow_content([dictionary], dictionary.type) == fp_arrow.arrow_content(
        [dictionary.dictionary_decode()], pa.string())


def test_index_columns_and_order() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
    d = fingerprint(df)
    assert fingerprint(df[["b", "a"]]) != d
    assert fingerprint(pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]}, index=[0, 1, 2])) == d  # RangeIndex
    assert fingerprint(df.set_axis(["x", "y", "z"])) != d
    assert fingerprint(df.rename_axis("idx")) != d
    assert fingerprint(df.rename_axis(columns="cols")) != d
    assert fingerprint(df.iloc[::2]) == fingerprint(df.iloc[[0, 2]])
    assert fingerprint(df.iloc[::2]) != fingerprint(df.iloc[[0, 2]].reset_index(drop=True))
    # A RangeIndex hashes like the equal materialised int64 index, and only like it.
    for r in (pd.RangeIndex(0, 30, 3), pd.RangeIndex(10, -7, -4), pd.RangeIndex(5, 6), pd.RangeIndex(4, 4)):
        assert fingerprint(r) == fingerprint(pd.Index(np.asarray(r), dtype="int64"))
        assert fingerprint(r) != fingerprint(pd.Index(np.asarray(r), dtype="int32"))
    assert fingerprint(pd.RangeIndex(5, 6)) == fingerprint(pd.RangeIndex(5, 100, 95))  # both are [5]
    assert fingerprint(pd.RangeIndex(0)) != fingerprint(pd.RangeIndex(1))
    almost = np.arange(0, 3000, 3)
    almost[500] += 1
    assert fingerprint(pd.Index(almost)) != fingerprint(pd.RangeIndex(0, 3000, 3))
    extremes = pd.Index(np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max]))
    assert fingerprint(extremes) != fingerprint(pd.Index(extremes[::-1]))
    mi = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"])
    frame = pd.DataFrame({"v": [1, 2, 3]}, index=mi)
    d = fingerprint(frame)
    assert fingerprint(frame.copy()) == d
    assert fingerprint(frame.rename_axis(["k", "m"])) != d
    assert fingerprint(frame.set_axis(pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 3)],
                                                                names=["k", "n"]))) != d
    # Same logical MultiIndex from different levels/codes.
    mi2 = pd.MultiIndex(levels=[["b", "a", "unused"], [2, 1]], codes=[[1, 1, 0], [1, 0, 1]], names=["k", "n"])
    assert fingerprint(pd.DataFrame({"v": [1, 2, 3]}, index=mi2)) == d
    # Tuple column labels vs a MultiIndex on columns.
    assert fingerprint(pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)]))) != \
        fingerprint(pd.DataFrame([[1, 2]], columns=pd.Index([("a", 1), ("a", 2)], tupleize_cols=False)))


def test_frames_built_differently_hash_equal() -> None:
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(1000, 3))
    a = pd.DataFrame(arr, columns=["x", "y", "z"])  # one 2-D block
    b = pd.DataFrame({"x": arr[:, 0].copy(), "y": arr[:, 1].copy(), "z": arr[:, 2].copy()})
    c = pd.concat([a.iloc[:400], a.iloc[400:]])
    assert fingerprint(a) == fingerprint(b) == fingerprint(c)
    big = rng.normal(size=(2000, 4))
    assert fingerprint(pd.DataFrame(big[::2])) == fingerprint(pd.DataFrame(big[::2].copy()))


def test_numpy_layouts_and_dtypes() -> None:
    a = np.arange(24, dtype=np.int64).reshape(4, 6)
    d = fingerprint(a)
    assert fingerprint(a.copy(order="F")) == d
    assert fingerprint(a.T) == fingerprint(np.ascontiguousarray(a.T)) != d
    assert fingerprint(a[:, ::2]) == fingerprint(a[:, ::2].copy())
    assert fingerprint(a[::-1]) == fingerprint(a[::-1].copy())
    assert fingerprint(a.reshape(6, 4)) != d
    assert fingerprint(a.astype(np.int32)) != d
    b = a.copy()
    b[3, 5] += 1
    assert fingerprint(b) != d
    # Views larger than one hashing block, in every axis order.
    big = np.random.default_rng(1).random((64, 300, 80))
    for axes in ((2, 1, 0), (1, 0, 2), (0, 2, 1)):
        view = big.transpose(axes)
        assert fingerprint(view) == fingerprint(np.ascontiguousarray(view))
    assert fingerprint(big[:, ::3, 1:]) == fingerprint(big[:, ::3, 1:].copy())
    wide = np.asfortranarray(np.random.default_rng(2).random((3, 600_000)))  # rows > one block
    assert fingerprint(wide.view(np.matrix)) == fingerprint(wide) == fingerprint(np.ascontiguousarray(wide))
    dates = np.array(["2020-01-01", "NaT"], dtype="datetime64[D]")
    assert fingerprint(dates) != fingerprint(dates.astype("datetime64[s]"))
    assert fingerprint(np.zeros((0, 3))) != fingerprint(np.zeros((3, 0)))
    assert fingerprint(np.array(["a", "bc"])) != fingerprint(np.array(["ab", "c"]))
    assert fingerprint(np.array([0.0])) != fingerprint(np.array([-0.0]))  # different bits, different value


def test_object_and_structured_arrays() -> None:
    assert len({fingerprint(np.array(x, dtype=object)) for x in ([1], [1.0], [True], ["1"], [b"1"], [None])}) == 6
    assert fingerprint(np.array(["ab", "c"], dtype=object)) != fingerprint(np.array(["a", "bc"], dtype=object))
    mixed = np.array([1, "a", None, 2.5, [1, 2], {"k": 1}, 2**100], dtype=object)
    assert fingerprint(mixed) == fingerprint(pickle.loads(pickle.dumps(mixed)))
    assert fingerprint(mixed.reshape(7, 1)) != fingerprint(mixed)
    dt = np.dtype([("a", "u1"), ("b", "<f8")], align=True)  # 7 padding bytes per record
    x = np.empty(3, dtype=dt)
    y = np.zeros(3, dtype=dt)
    x.view(np.uint8)[:] = 0xAB  # garbage in the padding
    for arr in (x, y):
        arr["a"] = [1, 2, 3]
        arr["b"] = [0.5, 1.5, np.nan]
    assert fingerprint(x) == fingerprint(y)
    y["b"][1] = 2.5
    assert fingerprint(x) != fingerprint(y)
    if hasattr(getattr(np, "dtypes", None), "StringDType"):  # numpy 2: buffers hold pointers, not text
        s1 = np.array(["a", "long string " * 5], dtype=np.dtypes.StringDType())
        s2 = np.array(["a", "long string " * 5], dtype=np.dtypes.StringDType())
        assert fingerprint(s1) == fingerprint(s2) != fingerprint(s2[::-1])


def test_text_columns_scan_agrees_with_one_length_per_string(monkeypatch) -> None:
    """The joined-text scan gives the digest a call per string gives, across chunk edges,
    non-ASCII, surrogates and strings holding the separator; str subclasses are their text."""
    from mlops_nb.fingerprint import objects as fp_objects

    rng = np.random.default_rng(3)
    vocab = ["", "a", "héllo", "😀x", "\x00", "tab\tnl\n", "\ud800lone", "x" * 300]
    for chosen in (vocab, vocab[:2], ["plain", "ascii"]):
        values = np.array([chosen[i] for i in rng.integers(0, len(chosen), 2_500)], dtype=object)
        items = values.tolist()
        spec = (  # the encoding: code-point lengths as little-endian int64, then the UTF-8 text
            xxhash.xxh3_128(np.array([len(x) for x in items], "<i8")).digest(),
            xxhash.xxh3_128("".join(items).encode("utf-8", "surrogatepass")).digest(),
        )
        assert fp_objects._str_digests(values) == fp_objects._str_digests(items) == spec
        whole = fingerprint(values)
        monkeypatch.setattr(fp_objects, "_STR_CHUNK", 7)  # many chunk edges, some chunks without NUL
        assert fp_objects._str_digests(values) == spec
        assert fingerprint(values) == whole
        monkeypatch.undo()
    assert fp_objects._str_digests(np.array(["a", 1], dtype=object)) is None
    one = np.array(["ab", "c"], dtype=object)
    assert fingerprint(one) != fingerprint(np.array(["a", "bc"], dtype=object))
    assert fingerprint(np.array(["a", None, "c"], dtype=object)) != fingerprint(np.array(["a", "", "c"], dtype=object))

    class Colour(str, enum.Enum):
        RED = "red"

    class Tag(str):
        pass

    text = np.array(["red", "b", None], dtype=object)
    assert fingerprint(np.array([Colour.RED, Tag("b"), None], dtype=object)) == fingerprint(text)
    assert fingerprint(np.array([Colour.RED, "b"], dtype=object)) == fingerprint(text[:2])


def test_primitives_and_containers() -> None:
    values = [1, 1.0, True, "1", b"1", bytearray(b"1"), None, [1], (1,), {1}, frozenset({1}), {1: 1},
              1 + 0j, np.int64(1), np.float64(1.0), decimal.Decimal("1"), datetime.date(2020, 1, 1),
              datetime.datetime(2020, 1, 1), pd.Timestamp("2020-01-01"), [[1]], ([1],), 2**70, -1]
    assert len({fingerprint(v) for v in values}) == len(values)
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])
    assert fingerprint([["a"], "b"]) != fingerprint([["a", "b"]])
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint([("a", 1)])
    assert fingerprint({"x", "y", 3}) == fingerprint({3, "y", "x"})
    assert len({fingerprint(f) for f in (np.mean, np.sum, np.log1p, np.exp, len, abs, int, float)}) == 8
    sparse = pytest.importorskip("scipy.sparse")
    m = sparse.random(30, 20, density=0.2, random_state=0, format="csr")
    assert fingerprint(m) == fingerprint(m.tocoo()) == fingerprint(m.tocsc()) != fingerprint(m * 2)
    tz = datetime.timezone(datetime.timedelta(hours=2))
    assert fingerprint(datetime.datetime(2020, 1, 1, tzinfo=tz)) != fingerprint(datetime.datetime(2020, 1, 1))
    assert fingerprint("é\ud800") != fingerprint("é")  # lone surrogates are encodable


STABLE_SRC = r"""
import numpy as np, pandas as pd, pyarrow as pa
from pathlib import Path
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
X, y = load_iris(return_X_y=True)
OBJECTS = {  # first: pandas scalars in an object column before any pandas object registers pandas' types
    "missing": np.array([None, pd.NaT, pd.NA, None], dtype=object),
    "pandas scalars": [pd.Period("2020-01", freq="M"), pd.Interval(0, 1), pd.NaT],
    "frame": pd.DataFrame({
        "i": np.arange(50), "f": np.linspace(0, 1, 50), "s": [f"s{i}" for i in range(50)],
        "o": [i if i % 3 else str(i) for i in range(50)], "c": pd.Categorical(["a", "b"] * 25),
        "t": pd.date_range("2020", periods=50, tz="Asia/Tokyo"), "n": pd.array([1, None] * 25, dtype="Int64"),
        "a": pd.Series(["x", None] * 25, dtype=pd.ArrowDtype(pa.string())),
    }),
    "array": np.arange(30.0).reshape(5, 6).T,
    "nested": {"set": {"b", "a", 1, (2, 3)}, "dict": {"z": [1, 2.0, None], 5: b"x"}, "f": frozenset("xyz")},
    "model": LogisticRegression(max_iter=1000).fit(X, y),
    "knn": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
    "vectorizer": CountVectorizer().fit(["red apple", "green apple", "red car"]),  # keeps an id() privately
    "path": Path(PATH),
}
"""


def _stable_digests(path: Path) -> dict[str, str]:
    ns: dict = {"PATH": str(path)}
    exec(STABLE_SRC, ns)
    return {k: fingerprint(v) for k, v in ns["OBJECTS"].items()}


def test_stable_across_processes_and_pickle(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.bin").write_bytes(os.urandom(1000))
    # Here pandas' encoders are registered before any object is hashed; in the fresh processes
    # below they register on the first pandas object: the digests must not depend on which.
    import mlops_nb.fingerprint.frames  # noqa: F401

    here = _stable_digests(tmp_path)
    code = (
        "import json, sys\n"
        "from mlops_nb.fingerprint import fingerprint\n"
        f"ns = {{'PATH': {str(tmp_path)!r}}}\n"
        f"exec({STABLE_SRC!r}, ns)\n"
        "print(json.dumps({k: fingerprint(v) for k, v in ns['OBJECTS'].items()}))\n"
    )
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == here
    ns: dict = {"PATH": str(tmp_path)}
    exec(STABLE_SRC, ns)
    for key, obj in ns["OBJECTS"].items():
        assert fingerprint(pickle.loads(pickle.dumps(obj))) == here[key], key


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_estimators(iris: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    X2 = X * 1.5 + 0.1
    unfitted = LogisticRegression(max_iter=1000)
    assert not is_fitted_estimator(unfitted)
    d_unfitted = fingerprint(unfitted)
    assert fingerprint(LogisticRegression(max_iter=1000)) == d_unfitted
    assert fingerprint(LogisticRegression(max_iter=1000, C=0.5)) != d_unfitted
    fitted = LogisticRegression(max_iter=1000).fit(X, y)
    assert is_fitted_estimator(fitted)
    d = fingerprint(fitted)
    assert d != d_unfitted
    assert fingerprint(LogisticRegression(max_iter=1000).fit(X, y)) == d
    assert fingerprint(pickle.loads(pickle.dumps(fitted))) == d
    assert fingerprint(LogisticRegression(max_iter=1000).fit(X2, y)) != d
    assert fingerprint(LogisticRegression(max_iter=1000).fit(pd.DataFrame(X, columns=list("abcd")), y)) != d

    def pipe() -> Pipeline:
        return Pipeline([("log", FunctionTransformer(np.log1p)), ("scale", StandardScaler()),
                         ("clf", LogisticRegression(max_iter=1000))])

    p = pipe().fit(X, y)
    assert is_fitted_estimator(p) and not is_fitted_estimator(pipe())
    assert fingerprint(pipe().fit(X, y)) == fingerprint(p) != fingerprint(pipe().fit(X2, y))
    assert fingerprint(pipe()) != fingerprint(p)
    lam = Pipeline([("f", FunctionTransformer(lambda a: a + 1))])
    assert fingerprint(lam) != fingerprint(Pipeline([("f", FunctionTransformer(lambda a: a + 2))]))

    def grid() -> GridSearchCV:
        return GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=3)

    g = grid().fit(X, y)
    assert fingerprint(grid().fit(X, y)) == fingerprint(g)  # fit timings are not content
    assert fingerprint(grid().fit(X2, y)) != fingerprint(g)
    from scipy.stats import loguniform

    def search(low: float) -> RandomizedSearchCV:
        return RandomizedSearchCV(LogisticRegression(max_iter=1000), {"C": loguniform(low, 10.0)}, n_iter=2,
                                  cv=3, random_state=0)  # fmt: skip

    assert fingerprint(search(0.01)) != fingerprint(search(0.1))
    assert fingerprint(search(0.01).fit(X, y)) == fingerprint(search(0.01).fit(X, y))
    # Private learned state counts too: KNN keeps its training data in _fit_X, HGB its trees in
    # _predictors; predict() fills query counters and caches that must not.
    knn = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    d = fingerprint(knn)
    knn.predict(X)
    assert fingerprint(knn) == d != fingerprint(KNeighborsClassifier(algorithm="kd_tree").fit(X2, y))
    hgb = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    assert fingerprint(HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)) == fingerprint(hgb)
    assert fingerprint(HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X2, y)) != fingerprint(hgb)
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    assert fingerprint(DecisionTreeClassifier(random_state=0).fit(X, y)) == fingerprint(tree)
    assert fingerprint(DecisionTreeClassifier(random_state=0, max_depth=2).fit(X, y)) != fingerprint(tree)
    for not_estimator in (None, 3, X, LogisticRegression):
        assert not is_fitted_estimator(not_estimator)


def test_file_bytes_fingerprint_like_the_file(tmp_path: Path) -> None:
    """A snapshot's file comes back as bytes: they fingerprint as the file did, in any block size."""
    from mlops_nb.fingerprint import fingerprint_file_bytes

    for data in (b"", b"a", bytes(range(256)) * 9000):  # the last spans several 1 MiB reads
        path = tmp_path / "f.bin"
        path.write_bytes(data)
        assert fingerprint_file_bytes(data) == fingerprint(path)
    assert fingerprint_file_bytes(b"ab") != fingerprint_file_bytes(b"ba")


def test_files_and_directories(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(os.urandom(3 * (1 << 20) + 17))  # several read chunks
    d = fingerprint(f)
    assert fingerprint_path(str(f)) == d
    assert fingerprint(f.read_bytes()) != d  # a path is not its bytes
    data = bytearray(f.read_bytes())
    data[2 * (1 << 20) + 5] ^= 1
    f.write_bytes(bytes(data))
    assert fingerprint(f) != d
    assert data_kind(f) == "file" and describe(f) == {"kind": "file", "shape": None, "schema": {"size": len(data)}}

    def tree(root: Path) -> Path:
        (root / "sub" / "deep").mkdir(parents=True)
        (root / "x.txt").write_text("hello")
        (root / "sub" / "y.txt").write_text("world")
        (root / "sub" / "deep" / "z.txt").write_text("!")
        return root

    t1, t2 = tree(tmp_path / "t1"), tree(tmp_path / "t2")
    d = fingerprint(t1)
    assert fingerprint(t2) == d == fingerprint_path(t1)
    assert describe(t1) == {"kind": "directory", "shape": None, "schema": {"files": 3, "size": 11}}
    (t2 / "sub" / "y.txt").write_text("World")
    assert fingerprint(t2) != d
    (t2 / "sub" / "y.txt").write_text("world")
    assert fingerprint(t2) == d
    (t2 / "sub" / "y.txt").rename(t2 / "sub" / "y2.txt")
    assert fingerprint(t2) != d
    (t2 / "sub" / "y2.txt").rename(t2 / "sub" / "y.txt")
    (t2 / "empty").mkdir()
    assert fingerprint(t2) != d
    (t2 / "empty").rmdir()
    (t2 / ".git").mkdir()  # nothing is ignored
    assert fingerprint(t2) != d
    (t2 / ".git").rmdir()
    (t2 / "link").symlink_to(t2 / "sub")
    assert fingerprint(t2) != d
    assert data_kind(t1) == "directory" and data_kind(str(t1)) is None
    with pytest.raises(FingerprintError, match="not an existing file or directory"):
        fingerprint_path(tmp_path / "missing")
    assert data_kind(tmp_path / "missing") is None


def test_read_only_arrays_are_cached_and_writeable_ones_are_not() -> None:
    frozen = np.frombuffer(np.arange(100_000, dtype=np.float64).tobytes(), dtype=np.float64)
    assert not frozen.flags.writeable
    d = fingerprint(frozen)
    # the cached digest is the content digest computed afresh from a writeable (never cached) copy
    fresh = np.array(frozen)
    assert fresh.flags.writeable and not fp_cache.provably_immutable(fresh)
    assert fp_cache.CACHE[id(frozen)][2] == fp_arrays.array_content(fresh) == fp_arrays.array_content(frozen)
    assert id(fresh) not in fp_cache.CACHE
    del fresh
    assert fingerprint(frozen) == d == fingerprint(np.arange(100_000, dtype=np.float64))
    view = frozen.reshape(1000, 100).T  # views of an immutable buffer are immutable too
    assert fingerprint(view) == fingerprint(np.ascontiguousarray(view)) and id(view) in fp_cache.CACHE
    key = id(frozen)
    del frozen, view
    gc.collect()
    assert key not in fp_cache.CACHE

    writeable = np.arange(1000.0)
    d = fingerprint(writeable)
    writeable[10] = -1.0
    assert fingerprint(writeable) != d and id(writeable) not in fp_cache.CACHE
    # Owning memory, "read-only" can be switched off again: never cached.
    owner = np.arange(1000.0)
    owner.flags.writeable = False
    d = fingerprint(owner)
    assert id(owner) not in fp_cache.CACHE
    owner.flags.writeable = True
    owner[0] = 42.0
    owner.flags.writeable = False
    assert fingerprint(owner) != d


def test_unsupported_objects_raise_clear_errors(iris: tuple[np.ndarray, np.ndarray]) -> None:
    class Opaque:
        pass

    with pytest.raises(FingerprintError, match=r"Opaque.*Supported: pandas DataFrame") as info:
        fingerprint(Opaque())
    assert info.value.type_name.endswith("Opaque")
    with pytest.raises(FingerprintError, match="generator"):
        fingerprint([1, (x for x in range(3))])
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression(max_iter=1000).fit(*iris)
    est.extra_ = Opaque()
    with pytest.raises(FingerprintError, match=r"at LogisticRegression\.extra_"):
        fingerprint(est)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(FingerprintError, match="cyclic"):
        fingerprint(cyclic)

    class LazyProxy:  # a proxy whose target fails to load: even isinstance() on it raises
        @property
        def __class__(self):
            raise RuntimeError("the proxied object could not be loaded")

    with pytest.raises(FingerprintError, match=r"builtins.list: reading it raised RuntimeError: the proxied"):
        fingerprint([1, LazyProxy()])


def test_data_kind_and_describe() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert data_kind(df) == "dataframe" and data_kind(df["a"]) == "series"
    assert data_kind(np.zeros(3)) == "array" and data_kind([1, 2]) is None and data_kind("x.csv") is None
    assert describe(df) == {"kind": "dataframe", "shape": [2, 2], "schema": {"a": "int64", "b": str(df["b"].dtype)}}
    assert describe(df["a"]) == {"kind": "series", "shape": [2], "schema": {"a": "int64"}}
    assert describe(np.zeros((2, 3), np.float32)) == {"kind": "array", "shape": [2, 3], "schema": {"dtype": "float32"}}
    assert describe(42) == {"kind": None, "shape": None, "schema": None}


def test_large_frame_completes() -> None:
    df = pd.DataFrame({"x": np.random.default_rng(0).random(10_000_000)})
    digest = fingerprint(df)
    df.iloc[9_999_999, 0] = 0.5
    assert fingerprint(df) != digest


def test_python_string_extension_array_directly():
    values = pd.array(["a", None, "c"], dtype="string[python]")
    changed = pd.array(["a", None, "d"], dtype="string[python]")
    assert fingerprint(values) == fingerprint(values.copy()) != fingerprint(changed)


def test_pandas_is_imported_only_by_pandas_objects() -> None:
    # pandas' import costs a kernel's first watched cell 0.2 s; a subclass from another
    # package (geopandas-like) still finds pandas' encoders when they register lazily.
    code = (
        "import sys, numpy as np\n"
        "from mlops_nb.fingerprint import data_kind, fingerprint\n"
        "fingerprint({'x': np.arange(5), 'y': [1.5, 'a', None]}); data_kind(np.arange(3))\n"
        "print('pandas' in sys.modules)\n"
        "import pandas as pd\n"
        "class GeoFrame(pd.DataFrame):\n"
        "    pass\n"
        "print(GeoFrame.__module__, fingerprint(GeoFrame({'a': [1, 2]})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "__main__", fingerprint(pd.DataFrame({"a": [1, 2]}))]
