"""Content fingerprints: the "data version" and "model version" of mlops_nb.

:func:`fingerprint` is the hex ``xxh3_128`` digest (32 characters) of an
object's *full* logical content, never a sample. Raw buffers are hashed in
bulk; Python runs per element only for exotic objects inside object columns.

Scheme ``mlops_nb-fp-v1``: a version atom, then every component framed as
``len(tag) | tag | uint64 length-or-count | payload`` so that concatenations
cannot collide. Large payloads go into framed sub-digests, which also makes
chunked inputs (arrow chunks, array blocks) hash independently of chunking.

- numpy: dtype, shape, content in C order (strided views copied block by
  block), NaNs canonicalised, structured arrays field by field.
- object values: sorted type names, one type code per element, then one
  vectorised payload per type (str: code-point lengths + UTF-8).
- pandas: column index, row index, then per column a dtype token and content
  (masked: NA positions + data with NA slots zeroed; categorical: codes,
  categories, ordered; tz-aware: UTC instants, tz in the token; pyarrow: null
  positions, values or string lengths + bytes). An int64 index that is an
  arithmetic progression hashes like the equal RangeIndex, in O(1) for it.
- paths: a file is its size and content (not its name); a directory is every
  entry sorted by relative path. Nothing is ignored, not even ``.git``.
- scikit-learn: type, ``get_params(deep=False)`` and the public attributes
  ending in ``_`` (fit timings excluded, so an identical refit matches).

Nothing depends on ``hash()``, ``id()`` or addresses: dicts and sets are
ordered by the digests of their keys or elements.
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
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from mlops_nb.errors import FingerprintError

__all__ = ["data_kind", "describe", "fingerprint", "fingerprint_path", "is_fitted_estimator"]

_VERSION = b"mlops_nb-fp-v1"
_U64 = struct.Struct("<Q")
# 4 MiB blocks: big enough to amortise call overhead, small enough that a NaN
# fix-up or a strided copy stays in cache.
_BLOCK = 1 << 22
_STR_CHUNK = 1 << 16  # strings joined at a time: bounds the temporary memory
_NAN = struct.pack("<d", float("nan"))
_VOLATILE_ATTRS = frozenset({"refit_time_"})  # wall-clock timings, not model content
_NO_PAYLOAD = (type(None), type(pd.NA), type(pd.NaT))
_SUPPORTED = (
    "pandas DataFrame/Series/Index/ExtensionArray, numpy arrays and scalars, pyarrow arrays, "
    "pathlib.Path (file or directory), scikit-learn estimators, None/bool/int/float/complex/"
    "str/bytes/date/time/Decimal/UUID, and lists, tuples, dicts and sets of these"
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
        "Convert it to one of these (e.g. a DataFrame) or fingerprint the file it came from.",
        type_name=name,
    )


# --------------------------------------------------------------------------- dispatch


@functools.singledispatch
def _feed(obj: Any, h: Any) -> None:
    """Write the framed encoding of ``obj`` into hasher ``h``."""
    # Optional libraries are looked up, never imported: an object of theirs exists only if they are.
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(obj, base.BaseEstimator):
        return _feed_estimator(obj, h)
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(obj, (pa.Array, pa.ChunkedArray)):
        _open(h, b"arrow", 2)
        _atom(h, b"type", str(obj.type).encode())
        chunks = obj.chunks if isinstance(obj, pa.ChunkedArray) else [obj]
        return _atom(h, b"content", _arrow_content(chunks, obj.type))
    if type(obj).__module__.startswith("sklearn."):
        # sklearn internals held by fitted estimators (tree_, scorers, CV
        # splitters): their pickle state is their content.
        state = getattr(obj, "__getstate__", lambda: getattr(obj, "__dict__", None))()
        if state is not None:
            _open(h, b"state", 2)
            _atom(h, b"type", _type_name(type(obj)).encode())
            return _feed(state, h)
    raise _unsupported(obj)


def _as(tag: bytes, content: Callable[[Any], Any]) -> Callable[[Any, Any], None]:
    """A handler that frames ``content(obj)`` under ``tag``."""

    def handler(obj: Any, h: Any) -> None:
        _open(h, tag, 1)
        _feed(content(obj), h)

    return handler


def _float_bytes(x: float) -> bytes:
    return _NAN if x != x else struct.pack("<d", x)


_feed.register(type(None), lambda o, h: _atom(h, b"none"))
_feed.register(bool, lambda o, h: _atom(h, b"bool", bytes([o])))
_feed.register(float, lambda o, h: _atom(h, b"float", _float_bytes(o)))
_feed.register(complex, lambda o, h: _atom(h, b"complex", _float_bytes(o.real) + _float_bytes(o.imag)))
_feed.register(np.dtype, lambda o, h: _atom(h, b"npdtype", _np_dtype_token(o).encode()))
_feed.register(pd.api.extensions.ExtensionDtype, lambda o, h: _atom(h, b"pddtype", _dtype_token(o).encode()))
_feed.register(np.random.RandomState, _as(b"RandomState", lambda o: o.get_state(legacy=True)))
_feed.register(np.random.Generator, _as(b"Generator", lambda o: o.bit_generator.state))
_feed.register(functools.partial, _as(b"partial", lambda o: (o.func, o.args, o.keywords)))
# A function is its name and bytecode, so two lambdas differ (closures and defaults are not covered).
_feed.register(types.FunctionType, _as(b"function", lambda o: (f"{o.__module__}.{o.__qualname__}", o.__code__)))
_feed.register(types.CodeType, _as(b"code", lambda o: (o.co_code, o.co_names, o.co_consts)))


@_feed.register(int)
def _(obj: int, h: Any) -> None:
    if isinstance(obj, enum.Enum):  # IntEnum: int precedes Enum in its MRO
        return _feed_enum(obj, h)
    _atom(h, b"int", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


@_feed.register(str)
def _(obj: str, h: Any) -> None:
    if isinstance(obj, enum.Enum):
        return _feed_enum(obj, h)
    _atom(h, b"str", obj.encode("utf-8", "surrogatepass"))


@_feed.register(bytes)
@_feed.register(bytearray)
@_feed.register(memoryview)
def _(obj: Any, h: Any) -> None:
    _atom(h, type(obj).__name__.encode(), obj.tobytes() if isinstance(obj, memoryview) else obj)


@_feed.register(list)
@_feed.register(tuple)
def _(obj: Any, h: Any) -> None:
    _open(h, b"tuple" if isinstance(obj, tuple) else b"list", len(obj))
    for item in obj:
        _feed(item, h)


@_feed.register(dict)
def _(obj: dict, h: Any) -> None:
    # Order-insensitive, like dict equality; sorted by key digest, not hash().
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


@_feed.register(type)
@_feed.register(types.BuiltinFunctionType)
@_feed.register(np.ufunc)
def _(obj: Any, h: Any) -> None:
    module = getattr(obj, "__module__", None) or "numpy"
    _atom(h, b"callable", f"{module}.{getattr(obj, '__qualname__', obj.__name__)}".encode())


def _feed_repr(obj: Any, h: Any) -> None:
    _atom(h, b"repr", f"{_type_name(type(obj))}:{obj!r}".encode())


# Value types whose repr is exact and deterministic (tz, nanoseconds, freq included).
for _t in (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, fractions.Fraction,
           uuid.UUID, range, type(Ellipsis), pd.Period, pd.Interval, type(pd.NA), type(pd.NaT)):
    _feed.register(_t, _feed_repr)


# --------------------------------------------------------------------------- numpy


def _np_dtype_token(dt: np.dtype) -> str:
    return repr(dt) if dt.names else dt.str


@_feed.register(np.ndarray)
def _feed_ndarray(a: np.ndarray, h: Any, tag: bytes = b"ndarray") -> None:
    _open(h, tag, 3)
    _atom(h, b"dtype", _np_dtype_token(a.dtype).encode())
    _atom(h, b"shape", np.asarray(a.shape, dtype="<i8"))
    _atom(h, b"content", _array_content(a))


_feed.register(np.generic, lambda o, h: _feed_ndarray(np.asarray(o), h, b"npscalar"))


@_feed.register(np.ma.MaskedArray)
def _(a: np.ma.MaskedArray, h: Any) -> None:
    mask, data = np.ma.getmaskarray(a), np.ma.getdata(a)
    if mask.any():  # the value under a masked slot must not matter
        data = data.copy()
        data[mask] = np.zeros((), data.dtype)
    _open(h, b"masked", 2)
    _feed_ndarray(mask, h)
    _feed_ndarray(data, h)


# Digests of provably immutable arrays: id -> (weakref, layout, digest).
_CACHE: dict[int, tuple[weakref.ref, tuple, bytes]] = {}


def _provably_immutable(a: np.ndarray) -> bool:
    """True when no public API can change ``a``'s bytes.

    Every array on the base chain must be read-only and the chain must end in
    ``bytes``: an array owning its memory can be made writeable again with
    ``flags.writeable = True``, so it is never cached.
    """
    b: Any = a
    while isinstance(b, np.ndarray):
        if b.flags.writeable:
            return False
        b = b.base
    if isinstance(b, memoryview):
        return b.readonly and isinstance(b.obj, bytes)
    return isinstance(b, bytes)


def _remember(a: np.ndarray, layout: tuple, digest: bytes) -> None:
    def drop(ref: weakref.ref, k: int = id(a)) -> None:
        entry = _CACHE.get(k)
        if entry is not None and entry[0] is ref:
            del _CACHE[k]

    _CACHE[id(a)] = (weakref.ref(a, drop), layout, digest)


def _c_blocks(a: np.ndarray) -> Iterator[np.ndarray]:
    """Yield 1-D contiguous blocks whose concatenation is ``a`` in C order."""
    a = np.asarray(a)  # np.matrix rows stay 2-D and would never bottom out
    if a.size == 0 or a.itemsize == 0:
        return
    if a.flags.c_contiguous:  # no copy
        flat, step = a.reshape(-1), max(1, _BLOCK // a.itemsize)
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
    """Bytes of a 1-D contiguous block, every NaN replaced by the canonical NaN."""
    if block.dtype.kind not in "fc":
        return block.view(np.uint8)
    f = block if block.dtype.kind == "f" else block.view(f"{block.dtype.str[0]}f{block.itemsize // 2}")
    with np.errstate(all="ignore"):
        maybe_nan = np.isnan(np.add.reduce(f))  # one vectorised pass, no temporary
    if maybe_nan:
        m = np.isnan(f)
        if m.any():
            f = f.copy()
            f[m] = np.nan
    return f.view(np.uint8)


def _array_content(a: np.ndarray) -> bytes:
    """16-byte digest of ``a``'s logical content (dtype and shape are framed by the caller)."""
    cacheable = _provably_immutable(a)
    layout = (a.dtype.str, a.shape, a.strides)
    hit = _CACHE.get(id(a)) if cacheable else None
    if hit is not None and hit[0]() is a and hit[1] == layout:
        return hit[2]
    sub = xxhash.xxh3_128()
    if a.dtype.names:  # padding bytes between fields are garbage: hash field by field
        for name in a.dtype.names:
            _atom(sub, b"field", _array_content(a[name]))
    elif a.dtype.hasobject or a.dtype.kind == "T":  # StringDType buffers hold pointers
        _feed_objects(a.astype(object, copy=False).reshape(-1), sub)
    else:
        for block in _c_blocks(a):
            sub.update(_canon(block))
    digest = sub.digest()
    if cacheable:
        _remember(a, layout, digest)
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
        return _feed_group(items, h)
    code = {t: names.index(_type_name(t)) for t in set(kinds)}
    codes = np.fromiter(map(code.__getitem__, kinds), np.int32, len(kinds))
    _atom(h, b"codes", codes)
    for i in range(len(names)):
        _feed_group(values[np.flatnonzero(codes == i)].tolist(), h)


def _feed_group(items: list, h: Any) -> None:
    """Objects of one type, vectorised for the common types."""
    t, n = type(items[0]), len(items)
    if t in _NO_PAYLOAD:
        return _atom(h, b"g-none")  # the count is implied by the type codes
    if issubclass(t, str) and not issubclass(t, enum.Enum):
        return _feed_strs(items, h, b"g-str")
    if t is bytes:
        return _feed_strs(items, h, b"g-bytes")
    if t is bool:
        return _atom(h, b"g-bool", np.fromiter(items, np.bool_, n))
    if t is int:
        try:
            return _atom(h, b"g-i64", np.fromiter(items, "<i8", n))
        except OverflowError:
            return _feed_strs(list(map(hex, items)), h, b"g-ihex")
    if issubclass(t, float):
        return _atom(h, b"g-f64", _canon(np.fromiter(items, "<f8", n)))
    _open(h, b"g-each", n)
    for item in items:
        _feed(item, h)


def _feed_strs(items: list, h: Any, tag: bytes) -> None:
    """Lengths and concatenated bytes, in two hashers so chunking cannot matter."""
    lens, data = xxhash.xxh3_128(), xxhash.xxh3_128()
    for i in range(0, len(items), _STR_CHUNK):
        chunk = items[i : i + _STR_CHUNK]
        lens.update(np.fromiter(map(len, chunk), "<i8", len(chunk)))
        is_str = isinstance(chunk[0], str)
        data.update("".join(chunk).encode("utf-8", "surrogatepass") if is_str else b"".join(chunk))
    _open(h, tag, 2)
    _atom(h, b"lens", lens.digest())
    _atom(h, b"data", data.digest())


# --------------------------------------------------------------------------- pyarrow


def _arrow_content(chunks: list, typ: Any) -> bytes:
    """Digest of an arrow column's logical content, whatever its chunking or slicing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    if t.is_dictionary(typ):
        chunks, typ = [c.dictionary_decode() for c in chunks], typ.value_type
    if hasattr(t, "is_string_view") and (t.is_string_view(typ) or t.is_binary_view(typ)):
        typ = pa.large_string() if t.is_string_view(typ) else pa.large_binary()
        chunks = [c.cast(typ) for c in chunks]
    text = t.is_string(typ) or t.is_large_string(typ)
    large = t.is_large_string(typ) or t.is_large_binary(typ)
    stringy = text or large or t.is_binary(typ)
    try:
        width = 0 if stringy or t.is_boolean(typ) or typ.bit_width % 8 else typ.bit_width // 8
    except ValueError:  # not fixed width: nested, extension...
        width = 0
    if not (stringy or width or t.is_boolean(typ) or t.is_null(typ)):
        # Nested types: merge chunks first so the per-type grouping is chunk-free.
        merged = pa.chunked_array(chunks, type=typ).combine_chunks()
        sub = xxhash.xxh3_128()
        _feed_objects(np.fromiter(merged.to_pylist(), dtype=object, count=len(merged)), sub)
        return sub.digest()
    nulls, vals, data = xxhash.xxh3_128(), xxhash.xxh3_128(), xxhash.xxh3_128()
    start = 0
    for c in chunks:
        n, valid = len(c), None
        if c.null_count:
            valid = c.is_valid().to_numpy(zero_copy_only=False)
            nulls.update(np.flatnonzero(~valid).astype("<i8") + start)
        if n == 0 or t.is_null(typ):
            pass
        elif stringy:
            if valid is not None:  # null slots may own bytes: rebuild them empty
                c = pc.fill_null(c, pa.scalar("" if text else b"", typ))
            bufs = c.buffers()
            offs = np.frombuffer(bufs[1], np.int64 if large else np.int32)[c.offset : c.offset + n + 1]
            vals.update(np.diff(offs).astype("<i8"))
            if bufs[2] is not None:
                data.update(memoryview(bufs[2])[int(offs[0]) : int(offs[-1])])
        elif t.is_boolean(typ):
            vals.update(c.fill_null(False).to_numpy(zero_copy_only=False).view(np.uint8))
        else:
            raw = np.frombuffer(c.buffers()[1], np.uint8)[c.offset * width : (c.offset + n) * width]
            if valid is not None:
                raw = raw.reshape(n, width).copy()
                raw[~valid] = 0
                raw = raw.reshape(-1)
            vals.update(_canon(raw.view(f"<f{width}")) if t.is_floating(typ) else raw)
        start += n
    sub = xxhash.xxh3_128()
    _atom(sub, b"len", _U64.pack(start))
    for tag, part in ((b"nulls", nulls), (b"values", vals), (b"data", data)):
        _atom(sub, tag, part.digest())
    return sub.digest()


# --------------------------------------------------------------------------- pandas


def _dtype_token(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        return "np:" + _np_dtype_token(dtype)
    token = f"pd:{type(dtype).__name__}:{dtype}"
    if isinstance(dtype, pd.StringDtype):  # "string" prints the same for both storages
        token += f":{dtype.storage}"
    return token


def _column_content(arr: Any, dtype: Any) -> bytes:
    """Digest of one column or index level (the dtype token is framed by the caller)."""
    if isinstance(dtype, (np.dtype, pd.SparseDtype)):
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
    elif isinstance(dtype, pd.ArrowDtype) or (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        chunked = arr.__arrow_array__()
        _atom(sub, b"arrow", _arrow_content(chunked.chunks, chunked.type))
    elif isinstance(arr, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        np_dtype = dtype.numpy_dtype
        _feed_ndarray(np.flatnonzero(np.asarray(arr.isna(), dtype=bool)), sub)
        _feed_ndarray(arr.to_numpy(dtype=np_dtype, na_value=np_dtype.type(0)), sub)
    else:  # other extension arrays (python strings, intervals...): NA positions + objects
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


def _as_range(idx: pd.Index) -> tuple[int, int, int] | None:
    """``(start, step, length)`` if ``idx`` is an int64 arithmetic progression, else None.

    O(1) for a RangeIndex; a materialised int64 index pays one pass only when
    its endpoints already fit a progression.
    """
    if isinstance(idx, pd.RangeIndex):
        start, step, n = idx.start, idx.step, len(idx)
    elif idx.dtype == np.dtype("int64"):
        x, n = np.asarray(idx), len(idx)
        start, step = (int(x[0]) if n else 0), (int(x[1]) - int(x[0]) if n > 1 else 1)
        if n > 1 and (step == 0 or not -(2**63) <= step < 2**63 or int(x[-1]) != start + (n - 1) * step):
            return None
        for i in range(0, n, _BLOCK // 8):  # exact: every expected value fits in int64
            j = min(n, i + _BLOCK // 8)
            if not np.array_equal(x[i:j], start + step * np.arange(i, j, dtype=np.int64)):
                return None
    else:
        return None
    return (start if n else 0, step if n > 1 else 1, n)


@_feed.register(pd.Index)
def _feed_index(idx: pd.Index, h: Any) -> None:
    if isinstance(idx, pd.MultiIndex):  # level values: (levels, codes) is not canonical
        _open(h, b"MultiIndex", 1 + idx.nlevels)
        _feed(list(idx.names), h)
        for i in range(idx.nlevels):
            level = idx.get_level_values(i)
            _feed_column(level.array, level.dtype, h)
        return
    _open(h, b"Index", 2)
    _feed(list(idx.names), h)
    rng = _as_range(idx)
    if rng is not None:
        _atom(h, b"range", struct.pack("<qqQ", *rng))
    else:
        _feed_column(idx.array, idx.dtype, h)


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
    for i in range(df.shape[1]):  # column by column: block layout cannot matter
        col = df.iloc[:, i]
        _feed_column(col.array, col.dtype, h)


@_feed.register(pd.api.extensions.ExtensionArray)
def _(arr: Any, h: Any) -> None:
    dtype = arr.dtype.numpy_dtype if isinstance(arr, pd.arrays.NumpyExtensionArray) else arr.dtype
    _open(h, b"ExtensionArray", 1)
    _feed_column(arr, dtype, h)


# --------------------------------------------------------------------------- estimators


def _feed_estimator(est: Any, h: Any) -> None:
    learned = {
        k: v for k, v in vars(est).items()
        if k.endswith("_") and not k.startswith("_") and k not in _VOLATILE_ATTRS
    }  # fmt: skip
    if isinstance(learned.get("cv_results_"), dict):  # fit/score timings vary run to run
        learned["cv_results_"] = {k: v for k, v in learned["cv_results_"].items() if not k.endswith("_time")}
    _open(h, b"sklearn", 3)
    _atom(h, b"type", _type_name(type(est)).encode())
    for tag, attrs in ((b"params", est.get_params(deep=False)), (b"learned", learned)):
        _open(h, tag, len(attrs))
        for name in sorted(attrs):
            _atom(h, b"name", name.encode())
            try:
                _feed(attrs[name], h)
            except FingerprintError as exc:
                where = f"{type(est).__qualname__}.{name}"
                raise FingerprintError(f"{exc.message} (at {where})", **exc.fields) from None


# --------------------------------------------------------------------------- paths


def _feed_file(path: str | os.PathLike[str], h: Any) -> None:
    sub, size, buf = xxhash.xxh3_128(), 0, memoryview(bytearray(1 << 20))
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            sub.update(buf[:n])
            size += n
    _open(h, b"file", 2)
    _atom(h, b"size", _U64.pack(size))
    _atom(h, b"content", sub.digest())


def _walk(root: pathlib.Path) -> list[tuple[bytes, str, str]]:
    """Sorted ``(relative posix path, kind, full path)`` of everything under ``root``."""

    def fail(err: OSError) -> None:  # os.walk skips unreadable directories by default
        raise err

    out = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.fsencode(os.path.relpath(full, root)).replace(os.fsencode(os.sep), b"/")
            if os.path.isfile(full):
                kind = "file"
            elif os.path.islink(full):  # to a directory (not followed: no cycles) or broken
                kind = "link"
            elif os.path.isdir(full):
                kind = "dir"
            else:
                raise FingerprintError(f"Cannot fingerprint {full}: not a file, directory or symlink.",
                                       type_name="pathlib.Path")  # fmt: skip
            out.append((rel, kind, full))
    return sorted(out)


@_feed.register(pathlib.Path)
def _(p: pathlib.Path, h: Any) -> None:
    if p.is_file():
        return _feed_file(p, h)
    if not p.is_dir():
        raise FingerprintError(f"Cannot fingerprint path {p}: it is not an existing file or directory.",
                               type_name=_type_name(type(p)))  # fmt: skip
    entries = _walk(p)
    _open(h, b"directory", len(entries))
    for rel, kind, full in entries:
        _open(h, b"entry", 2)
        _atom(h, b"path", rel)
        if kind == "file":
            _feed_file(full, h)
        else:
            _atom(h, kind.encode(), os.fsencode(os.readlink(full)) if kind == "link" else b"")


# --------------------------------------------------------------------------- public API


def fingerprint(obj: Any) -> str:
    """Return the content fingerprint of ``obj``.

    Parameters
    ----------
    obj : Any
        A DataFrame, Series, Index, numpy or pyarrow array, ``pathlib.Path``
        (file or directory), scikit-learn estimator, or a primitive or nested
        list, tuple, dict or set of these.

    Returns
    -------
    str
        32 hex characters (``xxh3_128``), equal for equal content in any
        process with the same library versions.

    Raises
    ------
    FingerprintError
        If ``obj`` or something inside it is unsupported, or a path cannot be read.
    """
    h = xxhash.xxh3_128()
    _atom(h, b"version", _VERSION)
    name = _type_name(type(obj))
    try:
        _feed(obj, h)
    except RecursionError:
        raise FingerprintError("Cannot fingerprint a cyclic or too deeply nested structure.",
                               type_name=name) from None  # fmt: skip
    except OSError as exc:
        raise FingerprintError(f"Cannot fingerprint {obj!r}: {exc}", type_name=name) from exc
    return h.hexdigest()


def fingerprint_path(path: str | os.PathLike[str]) -> str:
    """Fingerprint the file or directory named by ``path`` (see :func:`fingerprint`)."""
    return fingerprint(pathlib.Path(path))


def data_kind(obj: Any) -> str | None:
    """Return the kind of a data object we version, else None (never raises).

    Returns
    -------
    str or None
        ``"dataframe"``, ``"series"``, ``"array"`` (numpy), ``"file"`` or
        ``"directory"`` (an existing ``pathlib.Path``; plain strings are None).
    """
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
    """True if ``obj`` is a scikit-learn estimator instance passing ``check_is_fitted`` (never raises)."""
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
        ``{"kind", "shape", "schema"}``. Schemas: frames ``{column: dtype}``,
        series ``{name: dtype}``, arrays ``{"dtype": ...}``, files
        ``{"size": bytes}``, directories ``{"files": n, "size": bytes}``
        (paths have shape None). Other objects: kind, shape and schema None.
    """
    kind, shape, schema = data_kind(obj), None, None
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
