"""Content fingerprints: the "data version" and "model version" of mlops_nb.

:func:`fingerprint` returns the 32-character hex ``xxh3_128`` digest of an
object's *full* logical content (never a sample). Raw buffers are hashed in
bulk; no Python code runs per row except for exotic objects inside object
columns.

Scheme (version ``mlops_nb-fp-v1``): the stream starts with the version atom;
every component is framed as ``len(tag) | tag | uint64 length-or-count |
payload`` so concatenations cannot collide (``["ab", "c"]`` vs ``["a",
"bc"]``). Large payloads are hashed into sub-digests that are framed in the
parent, which also makes chunked inputs (arrow chunks, array blocks) hash
independently of how they are chunked.

- numpy: dtype string, shape, content in C order (strided views are copied
  block by block); NaNs are canonicalised; structured arrays field by field;
  object arrays with the object encoding below.
- object arrays / columns: sorted type names, a per-element type code, then
  one vectorised payload per type (str: code-point lengths + UTF-8 bytes;
  int64/float64/bool arrays; None/NA: nothing); other types per element.
- pandas: column index, row index, then per column a dtype token plus
  content: masked (Int64, boolean...) = NA positions + data with NA slots
  zeroed, categorical = codes + categories + ordered, tz-aware = UTC instants
  (the tz is in the dtype token), pyarrow = null positions + values / string
  lengths + bytes. A RangeIndex hashes like the equal int64 index.
- paths: file = size + streamed content (the name is not part of it);
  directory = every entry sorted by relative path (directories, files by
  content, symlinks that do not point to a file by target). Nothing is
  ignored, not even ``.git``: the digest is that of the whole tree.
- scikit-learn: type, ``get_params(deep=False)``, and the public attributes
  ending in ``_`` (fit timings excluded so an identical refit matches).

Stability: nothing depends on ``hash()``, ``id()`` or addresses (dicts and
sets are ordered by the digests of their keys/elements).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import functools
import os
import pathlib
import struct
import sys
import types
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from mlops_nb.errors import FingerprintError

__all__ = ["fingerprint", "fingerprint_path", "data_kind", "is_fitted_estimator", "describe"]

_VERSION = b"mlops_nb-fp-v1"
_U64 = struct.Struct("<Q")
# Arrays are hashed in 4 MiB blocks: large enough to amortise call overhead,
# small enough that a NaN fix-up or strided copy stays in cache.
_BLOCK = 1 << 22
_STR_CHUNK = 1 << 16  # strings joined per chunk, bounds the temporary memory
_NAN = struct.pack("<d", float("nan"))
_VOLATILE_ATTRS = frozenset({"refit_time_"})  # wall-clock timings, not model content
_SUPPORTED = (
    "pandas DataFrame/Series/Index/ExtensionArray, numpy arrays and scalars, pyarrow arrays, "
    "scipy sparse matrices, pathlib.Path (file or directory), scikit-learn estimators, "
    "None/bool/int/float/complex/str/bytes/date/time/Decimal/UUID, and lists, tuples, dicts "
    "and sets of these"
)


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _atom(h: Any, tag: bytes, data: Any = b"") -> None:
    """Frame a leaf: tag, byte length, bytes."""
    view = memoryview(data)
    h.update(bytes([len(tag)]) + tag + _U64.pack(view.nbytes))
    h.update(view)


def _open(h: Any, tag: bytes, count: int) -> None:
    """Frame a container header; ``count`` framed children follow."""
    h.update(bytes([len(tag)]) + tag + _U64.pack(count))


def _digest(obj: Any) -> bytes:
    sub = xxhash.xxh3_128()
    _feed(obj, sub)
    return sub.digest()


def _unsupported(obj: Any) -> FingerprintError:
    name = _type_name(type(obj))
    return FingerprintError(
        f"Cannot fingerprint an object of type {name}. Supported: {_SUPPORTED}. "
        "Convert it to one of these (e.g. a DataFrame) or fingerprint the file it was loaded from.",
        type_name=name,
    )


# --------------------------------------------------------------------------- dispatch


@functools.singledispatch
def _feed(obj: Any, h: Any) -> None:
    """Write the framed encoding of ``obj`` into hasher ``h``."""
    mods = sys.modules
    base = mods.get("sklearn.base")
    if base is not None and isinstance(obj, base.BaseEstimator):
        return _feed_estimator(obj, h)
    pa = mods.get("pyarrow")
    if pa is not None and isinstance(obj, (pa.Array, pa.ChunkedArray)):
        chunks = obj.chunks if isinstance(obj, pa.ChunkedArray) else [obj]
        _open(h, b"arrow", 2)
        _atom(h, b"type", str(obj.type).encode())
        return _atom(h, b"content", _arrow_content(chunks, obj.type))
    sparse = mods.get("scipy.sparse")
    if sparse is not None and sparse.issparse(obj):
        return _feed_sparse(obj, h)
    if type(obj).__module__.startswith("sklearn."):
        # sklearn internals held by fitted estimators (tree_, scorers, losses,
        # CV splitters): their pickle state is their content.
        getstate = getattr(obj, "__getstate__", None)
        state = getstate() if getstate is not None else getattr(obj, "__dict__", None)
        if state is not None:
            _open(h, b"state", 2)
            _atom(h, b"type", _type_name(type(obj)).encode())
            return _feed(state, h)
    raise _unsupported(obj)


@_feed.register(type(None))
def _(obj: None, h: Any) -> None:
    _atom(h, b"none")


@_feed.register(bool)
def _(obj: bool, h: Any) -> None:
    _atom(h, b"bool", b"\x01" if obj else b"\x00")


@_feed.register(int)
def _(obj: int, h: Any) -> None:
    if isinstance(obj, enum.Enum):  # IntEnum: int comes before Enum in its MRO
        return _feed_enum(obj, h)
    _atom(h, b"int", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


def _float_bytes(x: float) -> bytes:
    return _NAN if x != x else struct.pack("<d", x)


@_feed.register(float)
def _(obj: float, h: Any) -> None:
    _atom(h, b"float", _float_bytes(obj))


@_feed.register(complex)
def _(obj: complex, h: Any) -> None:
    _atom(h, b"complex", _float_bytes(obj.real) + _float_bytes(obj.imag))


@_feed.register(str)
def _(obj: str, h: Any) -> None:
    if isinstance(obj, enum.Enum):
        return _feed_enum(obj, h)
    _atom(h, b"str", obj.encode("utf-8", "surrogatepass"))


@_feed.register(bytes)
@_feed.register(bytearray)
@_feed.register(memoryview)
def _(obj: Any, h: Any) -> None:
    data = obj.tobytes() if isinstance(obj, memoryview) else obj
    _atom(h, type(obj).__name__.encode(), data)


@_feed.register(list)
@_feed.register(tuple)
def _(obj: Any, h: Any) -> None:
    _open(h, b"tuple" if isinstance(obj, tuple) else b"list", len(obj))
    for item in obj:
        _feed(item, h)


@_feed.register(dict)
def _(obj: dict, h: Any) -> None:
    # Order-insensitive like dict equality; keys sorted by digest, not hash().
    entries = sorted(((_digest(k), v) for k, v in obj.items()), key=lambda e: e[0])
    _open(h, b"dict", len(entries))
    for key_digest, value in entries:
        _atom(h, b"key", key_digest)
        _feed(value, h)


@_feed.register(set)
@_feed.register(frozenset)
def _(obj: Any, h: Any) -> None:
    _open(h, type(obj).__name__.encode(), len(obj))
    for d in sorted(_digest(x) for x in obj):
        _atom(h, b"elem", d)


@_feed.register(enum.Enum)
def _feed_enum(obj: enum.Enum, h: Any) -> None:
    _atom(h, b"enum", f"{_type_name(type(obj))}.{obj.name}".encode())


# Value types whose repr is exact and deterministic (includes tz, ns, freq...).
@_feed.register(datetime.date)
@_feed.register(datetime.time)
@_feed.register(datetime.timedelta)
@_feed.register(decimal.Decimal)
@_feed.register(fractions.Fraction)
@_feed.register(uuid.UUID)
@_feed.register(range)
@_feed.register(type(Ellipsis))
@_feed.register(pd.Period)
@_feed.register(pd.Interval)
@_feed.register(type(pd.NA))
@_feed.register(type(pd.NaT))
def _(obj: Any, h: Any) -> None:
    _atom(h, b"repr", f"{_type_name(type(obj))}:{obj!r}".encode())


@_feed.register(type)
@_feed.register(types.BuiltinFunctionType)
@_feed.register(np.ufunc)
def _(obj: Any, h: Any) -> None:
    name = getattr(obj, "__module__", None) or "numpy"
    _atom(h, b"callable", f"{name}.{getattr(obj, '__qualname__', obj.__name__)}".encode())


@_feed.register(types.FunctionType)
def _(obj: types.FunctionType, h: Any) -> None:
    # Name plus bytecode, so two different lambdas differ (closures/defaults are not covered).
    _open(h, b"function", 2)
    _atom(h, b"name", f"{obj.__module__}.{obj.__qualname__}".encode())
    _feed(obj.__code__, h)


@_feed.register(types.CodeType)
def _(obj: types.CodeType, h: Any) -> None:
    _open(h, b"code", 3)
    _atom(h, b"bytecode", obj.co_code)
    _feed(obj.co_names, h)
    _feed(obj.co_consts, h)


@_feed.register(functools.partial)
def _(obj: functools.partial, h: Any) -> None:
    _open(h, b"partial", 3)
    _feed(obj.func, h)
    _feed(obj.args, h)
    _feed(obj.keywords, h)


@_feed.register(np.dtype)
def _(obj: np.dtype, h: Any) -> None:
    _atom(h, b"npdtype", _np_dtype_token(obj).encode())


@_feed.register(pd.api.extensions.ExtensionDtype)
def _(obj: Any, h: Any) -> None:
    _atom(h, b"pddtype", _dtype_token(obj).encode())


@_feed.register(np.random.RandomState)
def _(obj: np.random.RandomState, h: Any) -> None:
    _open(h, b"RandomState", 1)
    _feed(obj.get_state(legacy=True), h)


@_feed.register(np.random.Generator)
def _(obj: np.random.Generator, h: Any) -> None:
    _open(h, b"Generator", 1)
    _feed(obj.bit_generator.state, h)


# --------------------------------------------------------------------------- numpy


def _np_dtype_token(dt: np.dtype) -> str:
    return repr(dt) if dt.names else dt.str


@_feed.register(np.ndarray)
def _feed_ndarray(a: np.ndarray, h: Any, tag: bytes = b"ndarray") -> None:
    _open(h, tag, 3)
    _atom(h, b"dtype", _np_dtype_token(a.dtype).encode())
    _atom(h, b"shape", np.asarray(a.shape, dtype="<i8"))
    _atom(h, b"content", _array_content(a))


@_feed.register(np.generic)
def _(obj: np.generic, h: Any) -> None:
    _feed_ndarray(np.asarray(obj), h, b"npscalar")


@_feed.register(np.ma.MaskedArray)
def _(a: np.ma.MaskedArray, h: Any) -> None:
    mask = np.ma.getmaskarray(a)
    data = np.ma.getdata(a)
    if mask.any():  # the value under a masked slot must not matter
        data = data.copy()
        data[mask] = np.zeros((), data.dtype)
    _open(h, b"masked", 2)
    _feed_ndarray(mask, h)
    _feed_ndarray(data, h)


# Digests of provably immutable arrays: id -> (weakref, layout key, digest).
_CACHE: dict[int, tuple[weakref.ref, tuple, bytes]] = {}


def _provably_immutable(a: np.ndarray) -> bool:
    """True when no public API can change ``a``'s bytes.

    Every array on the base chain must be read-only, and the chain must end in
    an immutable buffer (``bytes``): an array that owns its memory can be made
    writeable again with ``flags.writeable = True``, so it is never cached.
    """
    b: Any = a
    while isinstance(b, np.ndarray):
        if b.flags.writeable:
            return False
        b = b.base
    if isinstance(b, memoryview):
        return b.readonly and isinstance(b.obj, bytes)
    return isinstance(b, bytes)


def _remember(a: np.ndarray, key: tuple, digest: bytes) -> None:
    k = id(a)

    def drop(ref: weakref.ref, k: int = k) -> None:
        entry = _CACHE.get(k)
        if entry is not None and entry[0] is ref:
            del _CACHE[k]

    _CACHE[k] = (weakref.ref(a, drop), key, digest)


def _c_blocks(a: np.ndarray) -> Iterator[np.ndarray]:
    """Yield 1-D contiguous blocks whose concatenation is ``a`` in C order."""
    a = np.asarray(a)  # np.matrix rows stay 2-D, which would never bottom out
    if a.size == 0 or a.itemsize == 0:
        return
    if a.flags.c_contiguous:  # no copy
        flat = a.reshape(-1)
        step = max(1, _BLOCK // a.itemsize)
        for i in range(0, flat.size, step):
            yield flat[i : i + step]
        return
    # Strided view: copy a few leading-axis slices at a time, never the whole array.
    row = a.nbytes // a.shape[0]
    if row > _BLOCK and a.ndim > 1:
        for sub in a:
            yield from _c_blocks(sub)
        return
    step = max(1, _BLOCK // row)
    for i in range(0, a.shape[0], step):
        yield np.ascontiguousarray(a[i : i + step]).reshape(-1)


def _canon(block: np.ndarray) -> np.ndarray:
    """Bytes of a 1-D contiguous block, with every NaN replaced by the canonical NaN."""
    if block.dtype.kind in "fc":
        f = block if block.dtype.kind == "f" else block.view(f"{block.dtype.str[0]}f{block.itemsize // 2}")
        with np.errstate(all="ignore"):
            maybe_nan = np.isnan(np.add.reduce(f))  # a vectorised sum, no temporary array
        if maybe_nan:
            m = np.isnan(f)
            if m.any():
                f = f.copy()
                f[m] = np.nan
        return f.view(np.uint8)
    return block.view(np.uint8)


def _array_content(a: np.ndarray) -> bytes:
    """16-byte digest of the logical content of ``a`` (dtype and shape not included)."""
    cacheable = _provably_immutable(a)
    key = (a.dtype.str, a.shape, a.strides)
    if cacheable:
        hit = _CACHE.get(id(a))
        if hit is not None and hit[0]() is a and hit[1] == key:
            return hit[2]
    sub = xxhash.xxh3_128()
    if a.dtype.names:  # padding bytes between fields are garbage: hash fields one by one
        for name in a.dtype.names:
            _atom(sub, b"field", _array_content(a[name]))
    elif a.dtype.hasobject or a.dtype.kind == "T":  # 'T' (StringDType) buffers hold pointers
        _feed_objects(a.astype(object, copy=False).reshape(-1), sub)
    else:
        for block in _c_blocks(a):
            sub.update(_canon(block))
    digest = sub.digest()
    if cacheable:
        _remember(a, key, digest)
    return digest


def _feed_objects(values: np.ndarray, h: Any) -> None:
    """1-D object array: type names, a type code per element, one payload per type."""
    items = values.tolist()
    kinds = list(map(type, items))
    names = sorted({_type_name(t) for t in set(kinds)})
    _open(h, b"objects", 3 + len(names))
    _atom(h, b"count", _U64.pack(len(items)))
    _feed(names, h)
    if len(names) == 1:
        _atom(h, b"codes")
        _feed_group(items, h)
        return
    code = {t: names.index(_type_name(t)) for t in set(kinds)}
    codes = np.fromiter(map(code.__getitem__, kinds), np.int32, len(kinds))
    _atom(h, b"codes", codes)
    for i in range(len(names)):
        _feed_group(values[np.flatnonzero(codes == i)].tolist(), h)


def _feed_group(items: list, h: Any) -> None:
    """Objects of one type, vectorised for the common ones."""
    t = type(items[0])
    if t in (type(None), type(pd.NA), type(pd.NaT)):
        return _atom(h, b"g-none")  # the count is implied by the type codes
    if issubclass(t, str) and not issubclass(t, enum.Enum):
        return _feed_strs(items, h, b"g-str")
    if t is bytes:
        return _feed_strs(items, h, b"g-bytes")
    if t is bool:
        return _atom(h, b"g-bool", np.fromiter(items, np.bool_, len(items)))
    if t is int:
        try:
            return _atom(h, b"g-i64", np.fromiter(items, "<i8", len(items)))
        except OverflowError:
            return _feed_strs(list(map(hex, items)), h, b"g-ihex")
    if issubclass(t, float):
        return _atom(h, b"g-f64", _canon(np.fromiter(items, "<f8", len(items))))
    _open(h, b"g-each", len(items))
    for item in items:
        _feed(item, h)


def _feed_strs(items: list, h: Any, tag: bytes) -> None:
    """Lengths and concatenated bytes, hashed separately so chunking cannot matter."""
    lens, data = xxhash.xxh3_128(), xxhash.xxh3_128()
    for i in range(0, len(items), _STR_CHUNK):
        chunk = items[i : i + _STR_CHUNK]
        lens.update(np.fromiter(map(len, chunk), "<i8", len(chunk)))
        if isinstance(chunk[0], str):
            data.update("".join(chunk).encode("utf-8", "surrogatepass"))
        else:
            data.update(b"".join(chunk))
    _open(h, tag, 2)
    _atom(h, b"lens", lens.digest())
    _atom(h, b"data", data.digest())


def _feed_sparse(m: Any, h: Any) -> None:
    m = m.tocsr(copy=True)
    m.eliminate_zeros()
    m.sum_duplicates()  # canonical CSR: same matrix in any format gives the same digest
    _open(h, b"sparse", 5)
    _atom(h, b"dtype", m.dtype.str.encode())
    _feed(tuple(int(n) for n in m.shape), h)
    _atom(h, b"indptr", _array_content(m.indptr.astype("<i8")))
    _atom(h, b"indices", _array_content(m.indices.astype("<i8")))
    _atom(h, b"data", _array_content(m.data))


# --------------------------------------------------------------------------- pyarrow


def _arrow_content(chunks: list, typ: Any) -> bytes:
    """Digest of an arrow column's logical content, independent of chunking and slicing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    if t.is_dictionary(typ):
        chunks, typ = [c.dictionary_decode() for c in chunks], typ.value_type
    if getattr(t, "is_string_view", None) and (t.is_string_view(typ) or t.is_binary_view(typ)):
        typ = pa.large_string() if t.is_string_view(typ) else pa.large_binary()
        chunks = [c.cast(typ) for c in chunks]
    is_text = t.is_string(typ) or t.is_large_string(typ)
    stringy = is_text or t.is_binary(typ) or t.is_large_binary(typ)
    try:
        width = 0 if stringy or t.is_boolean(typ) else typ.bit_width // 8 * (typ.bit_width % 8 == 0)
    except ValueError:  # non fixed width: nested, extension...
        width = 0
    total = sum(len(c) for c in chunks)
    if not (stringy or width or t.is_boolean(typ) or t.is_null(typ)):
        # Rare nested types: merge chunks first so the per-type grouping is chunk-free.
        merged = pa.chunked_array(chunks, type=typ).combine_chunks() if chunks else pa.array([], typ)
        sub = xxhash.xxh3_128()
        _feed_objects(np.fromiter(merged.to_pylist(), dtype=object, count=len(merged)), sub)
        return sub.digest()
    nulls, vals, data = xxhash.xxh3_128(), xxhash.xxh3_128(), xxhash.xxh3_128()
    start = 0
    for c in chunks:
        n = len(c)
        if n == 0:
            continue
        valid = None
        if c.null_count:
            valid = c.is_valid().to_numpy(zero_copy_only=False)
            nulls.update(np.flatnonzero(~valid).astype("<i8") + start)
        if stringy:
            if valid is not None:  # null slots may own bytes: rebuild them as empty
                c = pc.fill_null(c, pa.scalar("" if is_text else b"", typ))
            bufs = c.buffers()
            off_type = np.int64 if (t.is_large_string(typ) or t.is_large_binary(typ)) else np.int32
            offs = np.frombuffer(bufs[1], off_type)[c.offset : c.offset + n + 1]
            vals.update(np.diff(offs).astype("<i8"))
            if bufs[2] is not None:
                data.update(memoryview(bufs[2])[int(offs[0]) : int(offs[-1])])
        elif t.is_boolean(typ):
            vals.update(c.fill_null(False).to_numpy(zero_copy_only=False).view(np.uint8))
        elif width:
            raw = np.frombuffer(c.buffers()[1], np.uint8)[c.offset * width : (c.offset + n) * width]
            if valid is not None:
                raw = raw.reshape(n, width).copy()
                raw[~valid] = 0
                raw = raw.reshape(-1)
            vals.update(_canon(raw.view(f"<f{width}")) if t.is_floating(typ) else raw)
        start += n
    sub = xxhash.xxh3_128()
    _atom(sub, b"len", _U64.pack(total))
    _atom(sub, b"nulls", nulls.digest())
    _atom(sub, b"values", vals.digest())
    _atom(sub, b"data", data.digest())
    return sub.digest()


# --------------------------------------------------------------------------- pandas


def _dtype_token(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        return "np:" + _np_dtype_token(dtype)
    token = f"pd:{type(dtype).__name__}:{dtype}"
    if isinstance(dtype, pd.StringDtype):  # "string" prints the same for both storages
        token += f":{dtype.storage}"
    return token


def _range_content(r: pd.RangeIndex) -> bytes:
    """Same digest as the equal int64 array, without materialising it."""
    sub, n, step = xxhash.xxh3_128(), len(r), _BLOCK // 8
    for i in range(0, n, step):
        k = min(step, n - i)
        sub.update(r.start + (i + np.arange(k, dtype="<i8")) * r.step)
    return sub.digest()


def _column_content(arr: Any, dtype: Any) -> bytes:
    """Digest of one column / index level (the dtype token is framed by the caller)."""
    if isinstance(arr, pd.RangeIndex):
        return _range_content(arr)
    if isinstance(dtype, np.dtype):
        return _array_content(np.asarray(arr))
    if isinstance(dtype, pd.SparseDtype):
        return _array_content(np.asarray(arr))
    sub = xxhash.xxh3_128()
    if isinstance(dtype, pd.CategoricalDtype):
        _feed_ndarray(np.asarray(arr.codes), sub)
        _feed_index(dtype.categories, sub)
        _feed(bool(dtype.ordered), sub)
    elif isinstance(dtype, pd.DatetimeTZDtype):
        _feed_ndarray(np.asarray(arr, dtype=dtype.base), sub)  # UTC instants
    elif isinstance(dtype, pd.PeriodDtype):
        _feed_ndarray(np.asarray(arr.asi8), sub)
    elif isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    ):
        chunked = arr.__arrow_array__()
        _atom(sub, b"arrow", _arrow_content(chunked.chunks, chunked.type))
    elif isinstance(arr, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        mask = np.asarray(arr.isna(), dtype=bool)
        np_dtype = dtype.numpy_dtype
        _feed_ndarray(np.flatnonzero(mask), sub)
        _feed_ndarray(arr.to_numpy(dtype=np_dtype, na_value=np_dtype.type(0)), sub)
    else:  # any other extension array: NA positions + objects (python strings, intervals...)
        mask = np.asarray(arr.isna(), dtype=bool)
        values = np.array(arr, dtype=object)
        values[mask] = None
        _feed_ndarray(np.flatnonzero(mask), sub)
        _feed_objects(values, sub)
    return sub.digest()


def _feed_column(arr: Any, dtype: Any, h: Any) -> None:
    _open(h, b"column", 3)
    _atom(h, b"dtype", _dtype_token(dtype).encode())
    _atom(h, b"len", _U64.pack(len(arr)))
    _atom(h, b"content", _column_content(arr, dtype))


@_feed.register(pd.Index)
def _feed_index(idx: pd.Index, h: Any) -> None:
    if isinstance(idx, pd.MultiIndex):  # level values, not (levels, codes): those are not canonical
        _open(h, b"MultiIndex", 1 + idx.nlevels)
        _feed(list(idx.names), h)
        for i in range(idx.nlevels):
            level = idx.get_level_values(i)
            _feed_column(level.array, level.dtype, h)
        return
    _open(h, b"Index", 2)
    _feed(list(idx.names), h)
    _feed_column(idx if isinstance(idx, pd.RangeIndex) else idx.array, idx.dtype, h)


@_feed.register(pd.Series)
def _(s: pd.Series, h: Any) -> None:
    _open(h, b"Series", 3)
    _feed(s.name, h)
    _feed_index(s.index, h)
    _feed_column(s.array, s.dtype, h)


@_feed.register(pd.DataFrame)
def _(df: pd.DataFrame, h: Any) -> None:
    _open(h, b"DataFrame", 2 + df.shape[1])
    _feed_index(df.columns, h)
    _feed_index(df.index, h)
    for i in range(df.shape[1]):  # per column, so block layout / consolidation cannot matter
        col = df.iloc[:, i]
        _feed_column(col.array, col.dtype, h)


@_feed.register(pd.api.extensions.ExtensionArray)
def _(arr: Any, h: Any) -> None:
    dtype = arr.dtype.numpy_dtype if isinstance(arr, pd.arrays.NumpyExtensionArray) else arr.dtype
    _open(h, b"ExtensionArray", 1)
    _feed_column(arr, dtype, h)


# --------------------------------------------------------------------------- estimators


def _feed_estimator(est: Any, h: Any) -> None:
    owner = type(est).__qualname__
    learned = {
        k: v
        for k, v in vars(est).items()
        if k.endswith("_") and not k.startswith("_") and k not in _VOLATILE_ATTRS
    }
    if isinstance(learned.get("cv_results_"), dict):  # fit/score timings vary run to run
        learned["cv_results_"] = {
            k: v for k, v in learned["cv_results_"].items() if not k.endswith("_time")
        }
    _open(h, b"sklearn", 3)
    _atom(h, b"type", _type_name(type(est)).encode())
    for tag, attrs in ((b"params", est.get_params(deep=False)), (b"learned", learned)):
        _open(h, tag, len(attrs))
        for name in sorted(attrs):
            _atom(h, b"name", name.encode())
            try:
                _feed(attrs[name], h)
            except FingerprintError as exc:
                raise FingerprintError(f"{exc.message} (at {owner}.{name})", **exc.fields) from None


# --------------------------------------------------------------------------- paths


def _feed_file(path: str | os.PathLike[str], h: Any) -> int:
    sub, size = xxhash.xxh3_128(), 0
    buf = memoryview(bytearray(1 << 20))
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            sub.update(buf[:n])
            size += n
    _open(h, b"file", 2)
    _atom(h, b"size", _U64.pack(size))
    _atom(h, b"content", sub.digest())
    return size


def _walk(root: pathlib.Path) -> list[tuple[bytes, str, str]]:
    """Sorted (relative posix path, kind, full path) of everything under ``root``."""

    def fail(err: OSError) -> None:
        raise err

    out = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.fsencode(os.path.relpath(full, root)).replace(os.fsencode(os.sep), b"/")
            if os.path.isfile(full):
                kind = "file"
            elif os.path.islink(full):  # link to a dir (not followed: no cycles) or broken
                kind = "link"
            elif os.path.isdir(full):
                kind = "dir"
            else:
                raise FingerprintError(
                    f"Cannot fingerprint {full}: not a regular file, directory or symlink.",
                    type_name="pathlib.Path",
                )
            out.append((rel, kind, full))
    out.sort()
    return out


@_feed.register(pathlib.Path)
def _(p: pathlib.Path, h: Any) -> None:
    if p.is_file():
        _feed_file(p, h)
    elif p.is_dir():
        entries = _walk(p)
        _open(h, b"directory", len(entries))
        for rel, kind, full in entries:
            _open(h, b"entry", 2)
            _atom(h, b"path", rel)
            if kind == "file":
                _feed_file(full, h)
            else:
                _atom(h, kind.encode(), os.fsencode(os.readlink(full)) if kind == "link" else b"")
    else:
        raise FingerprintError(
            f"Cannot fingerprint path {p}: it is not an existing file or directory.",
            type_name=_type_name(type(p)),
        )


# --------------------------------------------------------------------------- public API


def fingerprint(obj: Any) -> str:
    """Return the content fingerprint of ``obj``.

    Parameters
    ----------
    obj : Any
        A DataFrame, Series, Index, numpy array, pyarrow array, ``pathlib.Path``
        (file or directory), scikit-learn estimator, or a primitive / nested
        list, tuple, dict or set of these.

    Returns
    -------
    str
        32 hex characters (``xxh3_128``), stable across processes and versions
        of the same library stack.

    Raises
    ------
    FingerprintError
        If ``obj`` (or something inside it) is of an unsupported type, or a
        path cannot be read.
    """
    h = xxhash.xxh3_128()
    _atom(h, b"version", _VERSION)
    try:
        _feed(obj, h)
    except RecursionError:
        raise FingerprintError(
            "Cannot fingerprint a cyclic or too deeply nested structure.",
            type_name=_type_name(type(obj)),
        ) from None
    except OSError as exc:
        raise FingerprintError(f"Cannot fingerprint {obj!r}: {exc}", type_name=_type_name(type(obj))) from exc
    return h.hexdigest()


def fingerprint_path(path: str | os.PathLike[str]) -> str:
    """Fingerprint the file or directory named by ``path`` (see :func:`fingerprint`)."""
    return fingerprint(pathlib.Path(path))


def data_kind(obj: Any) -> str | None:
    """Return ``"dataframe"``, ``"series"``, ``"array"``, ``"file"`` or ``"directory"``
    for objects versioned as data, else ``None``. Never raises."""
    if isinstance(obj, pd.DataFrame):
        return "dataframe"
    if isinstance(obj, pd.Series):
        return "series"
    if isinstance(obj, np.ndarray):
        return "array"
    if isinstance(obj, pathlib.Path):
        try:
            return "file" if obj.is_file() else "directory" if obj.is_dir() else None
        except OSError:
            return None
    return None


def is_fitted_estimator(obj: Any) -> bool:
    """True if ``obj`` is a scikit-learn estimator instance that passes ``check_is_fitted``."""
    base = sys.modules.get("sklearn.base")  # not imported: obj cannot be an estimator
    if base is None or not isinstance(obj, base.BaseEstimator):
        return False
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except Exception:
        return False
    return True


def describe(obj: Any) -> dict[str, Any]:
    """Kind, shape and schema of a data object.

    Returns
    -------
    dict
        ``{"kind", "shape", "schema"}``: frames ``schema={column: dtype}``,
        series ``{name: dtype}``, arrays ``{"dtype": ...}``, files
        ``{"size": bytes}``, directories ``{"files": n, "size": bytes}``
        (shape ``None`` for paths). Non-data objects give ``kind=None`` and
        ``None`` for the rest.
    """
    kind = data_kind(obj)
    shape: list[int] | None = None
    schema: dict[str, Any] | None = None
    if kind == "dataframe":
        shape, schema = list(obj.shape), {str(c): str(t) for c, t in obj.dtypes.items()}
    elif kind == "series":
        shape, schema = list(obj.shape), {str(obj.name): str(obj.dtype)}
    elif kind == "array":
        shape, schema = [int(n) for n in obj.shape], {"dtype": str(obj.dtype)}
    elif kind == "file":
        schema = {"size": obj.stat().st_size}
    elif kind == "directory":
        files = [full for _, k, full in _walk(obj) if k == "file"]
        schema = {"files": len(files), "size": sum(os.path.getsize(f) for f in files)}
    return {"kind": kind, "shape": shape, "schema": schema}
