"""Python values: primitives, collections, enums, callables, and object columns.

Dicts and sets are ordered by the digests of their keys or elements, never by
``hash()``. An object column is encoded as its sorted type names, one type
code per element, then one vectorised payload per type (str: code-point
lengths + UTF-8). Instances of str subclasses (str-valued enums included) are
their text there, as they compare equal to it.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import functools
import struct
import sys
import types
import uuid
from typing import Any

import numpy as np
import xxhash

from .buffers import canonical_bytes
from .framing import U64, atom, container, digest, feed, framed, type_name

_STR_CHUNK = 1 << 18  # strings joined at a time: bounds the temporary memory
_SEP = "\x00"  # joins a chunk so one vectorised scan finds every length
_NAN = struct.pack("<d", float("nan"))


def _float_bytes(x: float) -> bytes:
    return _NAN if x != x else struct.pack("<d", x)


feed.register(type(None), lambda o, h: atom(h, b"none"))
feed.register(bool, lambda o, h: atom(h, b"bool", bytes([o])))
feed.register(float, lambda o, h: atom(h, b"float", _float_bytes(o)))
feed.register(complex, lambda o, h: atom(h, b"complex", _float_bytes(o.real) + _float_bytes(o.imag)))
feed.register(np.random.RandomState, framed(b"RandomState", lambda o: o.get_state(legacy=True)))
feed.register(np.random.Generator, framed(b"Generator", lambda o: o.bit_generator.state))
feed.register(functools.partial, framed(b"partial", lambda o: (o.func, o.args, o.keywords)))
# A function is its name and bytecode, so two lambdas differ (closures and defaults are not covered).
feed.register(types.FunctionType, framed(b"function", lambda o: (f"{o.__module__}.{o.__qualname__}", o.__code__)))
feed.register(types.CodeType, framed(b"code", lambda o: (o.co_code, o.co_names, o.co_consts)))


@feed.register(int)
def _(obj: int, h: Any) -> None:
    if isinstance(obj, enum.Enum):  # IntEnum: int precedes Enum in its MRO
        return _feed_enum(obj, h)
    atom(h, b"int", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


@feed.register(str)
def _(obj: str, h: Any) -> None:
    if isinstance(obj, enum.Enum):
        return _feed_enum(obj, h)
    atom(h, b"str", obj.encode("utf-8", "surrogatepass"))


@feed.register(bytes)
@feed.register(bytearray)
@feed.register(memoryview)
def _(obj: Any, h: Any) -> None:
    atom(h, type(obj).__name__.encode(), obj.tobytes() if isinstance(obj, memoryview) else obj)


@feed.register(list)
@feed.register(tuple)
def _(obj: Any, h: Any) -> None:
    container(h, b"tuple" if isinstance(obj, tuple) else b"list", len(obj))
    for item in obj:
        feed(item, h)


@feed.register(dict)
def _(obj: dict, h: Any) -> None:
    # Order-insensitive, like dict equality; sorted by key digest, not hash().
    entries = sorted(((digest(k), v) for k, v in obj.items()), key=lambda e: e[0])
    container(h, b"dict", len(entries))
    for key_digest, value in entries:
        atom(h, b"key", key_digest)
        feed(value, h)


@feed.register(set)
@feed.register(frozenset)
def _(obj: Any, h: Any) -> None:
    container(h, type(obj).__name__.encode(), len(obj))
    for d in sorted(digest(x) for x in obj):
        atom(h, b"elem", d)


@feed.register(enum.Enum)
def _feed_enum(obj: enum.Enum, h: Any) -> None:
    atom(h, b"enum", f"{type_name(type(obj))}.{obj.name}".encode())


@feed.register(type)
@feed.register(types.BuiltinFunctionType)
@feed.register(np.ufunc)
@feed.register(type(np.mean))  # numpy's array-function dispatchers
def _(obj: Any, h: Any) -> None:
    module = getattr(obj, "__module__", None) or "numpy"
    atom(h, b"callable", f"{module}.{getattr(obj, '__qualname__', obj.__name__)}".encode())


def feed_repr(obj: Any, h: Any) -> None:
    atom(h, b"repr", f"{type_name(type(obj))}:{obj!r}".encode())


# Value types whose repr is exact and deterministic (tz, nanoseconds, freq included);
# pandas' own scalars are registered with the rest of pandas, in :mod:`.frames`.
for _t in (datetime.date, datetime.time, datetime.timedelta, decimal.Decimal, fractions.Fraction,
           uuid.UUID, range, slice, type(Ellipsis)):
    feed.register(_t, feed_repr)


def _no_payload(t: type) -> bool:
    """None and pandas' NA/NaT: an element of these types is its type code alone."""
    if t is type(None):
        return True
    pd = sys.modules.get("pandas")  # NA and NaT exist only once pandas is imported
    return pd is not None and (t is type(pd.NA) or t is type(pd.NaT))


# --------------------------------------------------------------------------- object columns


def _kind(t: type) -> type:
    return str if issubclass(t, str) else t


def feed_objects(values: np.ndarray, h: Any) -> None:
    """1-D object array: type names, a type code per element, one payload per type."""
    strs = _str_digests(values) if len(values) else None
    if strs is not None:  # every element a str (CSV text): the same bytes as below, faster
        container(h, b"objects", 4)
        atom(h, b"count", U64.pack(len(values)))
        feed([type_name(str)], h)
        atom(h, b"codes")
        return _frame_strs(h, b"g-str", *strs)
    items = values.tolist()
    kinds = list(map(_kind, map(type, items)))
    names = sorted({type_name(t) for t in set(kinds)})
    container(h, b"objects", 3 + len(names))
    atom(h, b"count", U64.pack(len(items)))
    feed(names, h)
    if len(names) == 1:
        atom(h, b"codes")
        return _feed_group(items, h)
    code = {t: names.index(type_name(t)) for t in set(kinds)}
    codes = np.fromiter(map(code.__getitem__, kinds), np.int32, len(kinds))
    atom(h, b"codes", codes)
    for i in range(len(names)):
        _feed_group(values[np.flatnonzero(codes == i)].tolist(), h)


def _feed_group(items: list, h: Any) -> None:
    """Objects of one type, vectorised for the common types."""
    t, n = type(items[0]), len(items)
    if _no_payload(t):
        return atom(h, b"g-none")  # the count is implied by the type codes
    if issubclass(t, str):  # grouped by _kind: str-valued enums and other subclasses are text here
        return _feed_strs(items, h, b"g-str")
    if t is bytes:
        return _feed_strs(items, h, b"g-bytes")
    if t is bool:
        return atom(h, b"g-bool", np.fromiter(items, np.bool_, n))
    if t is int:
        try:
            return atom(h, b"g-i64", np.fromiter(items, "<i8", n))
        except OverflowError:
            return _feed_strs(list(map(hex, items)), h, b"g-ihex")
    if issubclass(t, float):
        return atom(h, b"g-f64", canonical_bytes(np.fromiter(items, "<f8", n)))
    container(h, b"g-each", n)
    for item in items:
        feed(item, h)


def _feed_strs(items: list, h: Any, tag: bytes) -> None:
    """Lengths and concatenated bytes, in two hashers so chunking cannot matter."""
    if isinstance(items[0], str):
        return _frame_strs(h, tag, *_str_digests(items))
    lens, data = xxhash.xxh3_128(), xxhash.xxh3_128()
    for i in range(0, len(items), _STR_CHUNK):
        chunk = items[i : i + _STR_CHUNK]
        lens.update(np.fromiter(map(len, chunk), "<i8", len(chunk)))
        data.update(b"".join(chunk))
    _frame_strs(h, tag, lens.digest(), data.digest())


def _frame_strs(h: Any, tag: bytes, lens: bytes, data: bytes) -> None:
    container(h, tag, 2)
    atom(h, b"lens", lens)
    atom(h, b"data", data)


def _str_digests(items: Any) -> tuple[bytes, bytes] | None:
    """Digests of the code-point lengths and of the UTF-8 text of strings, or None when an
    element is not a str. Lengths come from one scan of the joined text, not a call per string."""
    lens, data = xxhash.xxh3_128(), xxhash.xxh3_128()
    for i in range(0, len(items), _STR_CHUNK):
        chunk = items[i : i + _STR_CHUNK]
        chunk = chunk.tolist() if isinstance(chunk, np.ndarray) else chunk  # join would copy it first
        try:
            joined = _SEP.join(chunk)
        except TypeError:
            return None
        units = (
            np.frombuffer(joined.encode("ascii"), np.uint8)
            if joined.isascii()
            else np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), "<u4")
        )
        ends = np.flatnonzero(units == 0)
        if ends.size == len(chunk) - 1:  # else a string holds the separator itself
            bounds = np.empty(len(chunk) + 1, "<i8")
            bounds[0], bounds[1:-1], bounds[-1] = -1, ends, units.size
            lengths = np.diff(bounds)
            lengths -= 1
            lens.update(lengths)
        else:
            lens.update(np.fromiter(map(len, chunk), "<i8", len(chunk)))
        data.update("".join(chunk).encode("utf-8", "surrogatepass"))
    return lens.digest(), data.digest()
