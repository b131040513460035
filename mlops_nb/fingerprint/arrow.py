"""pyarrow arrays and chunked arrays, hashed independently of chunking and slicing.

A column is its null positions, then its values (fixed width: null slots
zeroed; strings and binaries: lengths, then bytes). Dictionaries are decoded
first; nested types go through the object-column encoding. pyarrow is imported
only when an arrow object is hashed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xxhash

from .buffers import canonical_bytes
from .framing import U64, atom, container
from .objects import feed_objects


def feed_arrow(arr: Any, h: Any) -> None:
    """A ``pyarrow.Array`` or ``pyarrow.ChunkedArray``: its type, then its content."""
    import pyarrow as pa

    container(h, b"arrow", 2)
    atom(h, b"type", str(arr.type).encode())
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    atom(h, b"content", arrow_content(chunks, arr.type))


def arrow_content(chunks: list, typ: Any) -> bytes:
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
        feed_objects(np.fromiter(merged.to_pylist(), dtype=object, count=len(merged)), sub)
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
            vals.update(canonical_bytes(raw.view(f"<f{width}")) if t.is_floating(typ) else raw)
        start += n
    sub = xxhash.xxh3_128()
    atom(sub, b"len", U64.pack(start))
    for tag, part in ((b"nulls", nulls), (b"values", vals), (b"data", data)):
        atom(sub, tag, part.digest())
    return sub.digest()
