"""Where a snapshot is cut into chunks: by content, so an edit moves only the cuts near it.

Tables are cut between rows. Each row gets a 64-bit hash of its values (fixed-width
columns by their bits, strings by their length and first eight bytes); a row whose hash
has its low bits zero ends a chunk. Inserting, deleting or editing rows changes only the
hashes of those rows, so every other cut stays where it was and every other chunk keeps
its bytes: a one-row edit stores one chunk again, not the table. Files are cut between
bytes in the same spirit by FastCDC (pyfastcdc).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

TARGET_CHUNK_BYTES = 1 << 20  # in memory, before compression: a one-row edit rewrites ~1 MiB
FILE_CHUNK_BYTES = 1 << 20  # FastCDC's average for files
_STRING_GUESS = 32  # bytes a string cell is assumed to take when choosing the average
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def average_rows(schema: Any) -> int:
    """Average rows per chunk: a power of two depending on the schema only, never on values,
    so two versions of a table with one schema are cut with the same rule."""
    import pyarrow as pa

    width = 0
    for field in schema:
        typ = field.type
        if pa.types.is_dictionary(typ):
            typ = typ.index_type
        try:
            width += max(1, typ.bit_width // 8)
        except ValueError:  # variable width: strings, binaries, nested
            width += _STRING_GUESS
    rows = TARGET_CHUNK_BYTES / max(width, 1)
    return int(2 ** min(20, max(8, round(np.log2(rows)))))


def row_boundaries(table: Any, average: int | None = None) -> list[int]:
    """Row offsets where chunks end (the last is ``table.num_rows``)."""
    n = table.num_rows
    if n == 0:
        return [0]
    average = average or average_rows(table.schema)
    low, high = max(1, average // 4), average * 4
    hashes = row_hashes(table)
    candidates = np.flatnonzero((hashes & np.uint64(average - 1)) == 0) + 1  # cut after that row
    cuts, last = [], 0
    for cut in candidates.tolist():
        while cut - last > high:  # no content cut for too long: cut by size (rare)
            last += high
            cuts.append(last)
        if cut - last >= low and cut < n:
            cuts.append(cut)
            last = cut
    while n - last > high:
        last += high
        cuts.append(last)
    cuts.append(n)
    return cuts


def row_hashes(table: Any, *, columns: int = 6) -> np.ndarray:
    """A 64-bit hash of each row's values (nulls count as zeros).

    Up to ``columns`` columns take part, chosen from the schema alone (strings first, then
    the widest fixed-width types): enough content to place cuts, at a fraction of the cost.
    """
    n = table.num_rows
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in _hash_columns(table.schema, columns):
            column = table.column(i)
            words = _column_words(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
            for w in words:
                h *= _GOLDEN
                h += w
                h ^= h >> np.uint64(31)
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return h


def _hash_columns(schema: Any, limit: int) -> list[int]:
    import pyarrow as pa

    def rank(i: int) -> tuple[int, int]:
        typ = schema.field(i).type
        if pa.types.is_dictionary(typ):
            return (2, i)
        try:
            return (3 - min(typ.bit_width, 64) // 32, i)  # 64-bit before 32-bit before narrower
        except ValueError:
            return (0, i)  # strings, binaries, fixed-size rows: the most content per row

    return sorted(sorted(range(len(schema)), key=rank)[:limit])


def _column_words(arr: Any) -> list[np.ndarray]:
    """One or two uint64 words per row standing for a column's values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.types
    typ = arr.type
    if t.is_dictionary(typ):
        arr, typ = arr.indices, arr.indices.type
    if isinstance(typ, pa.ExtensionType):
        arr, typ = arr.storage, arr.storage.type
    if t.is_boolean(typ):
        return [np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=np.uint64)]
    if t.is_string(typ) or t.is_large_string(typ) or t.is_binary(typ) or t.is_large_binary(typ):
        return _string_words(arr, large=t.is_large_string(typ) or t.is_large_binary(typ))
    if t.is_fixed_size_binary(typ):
        return _fixed_binary_words(arr, typ.byte_width)
    try:
        width = typ.bit_width // 8
    except ValueError:
        return []  # nested: the other columns place the cuts
    if width not in (1, 2, 4, 8):
        return []
    buf = arr.buffers()[1]
    values = np.frombuffer(buf, dtype=f"<u{width}")[arr.offset : arr.offset + len(arr)]
    words = values.astype(np.uint64)
    if arr.null_count:
        words[~arr.is_valid().to_numpy(zero_copy_only=False)] = 0
    return [words]


def _string_words(arr: Any, *, large: bool) -> list[np.ndarray]:
    """Length and first eight bytes of each string."""
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int64 if large else np.int32)[arr.offset : arr.offset + n + 1].astype(np.int64)
    lengths = np.diff(offsets)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    padded = np.zeros(data.size + 8, np.uint8)
    padded[: data.size] = data
    # every 8-byte window of the data as one uint64 (unaligned, overlapping view), read at each start
    windows = np.ndarray((data.size + 1,), dtype="<u8", buffer=padded, strides=(1,))
    head = windows[offsets[:-1]]
    short = lengths < 8
    head[short] &= (np.uint64(1) << (lengths[short].astype(np.uint64) * np.uint64(8))) - np.uint64(1)
    words = [lengths.astype(np.uint64), head]
    if arr.null_count:
        invalid = ~arr.is_valid().to_numpy(zero_copy_only=False)
        for w in words:
            w[invalid] = 0
    return words


def _fixed_binary_words(arr: Any, width: int) -> list[np.ndarray]:
    """Up to four leading uint64 words of each fixed-size row (an array's rows)."""
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], np.uint8)[arr.offset * width : (arr.offset + n) * width].reshape(n, width)
    take = min(width, 32) // 8 * 8
    words = []
    if take:
        packed = np.ascontiguousarray(raw[:, :take]).view("<u8")
        words.extend(packed[:, i] for i in range(take // 8))
    rest = min(width, 32) - take
    if rest:
        tail = np.zeros((n, 8), np.uint8)
        tail[:, :rest] = raw[:, take : take + rest]
        words.append(tail.view("<u8").reshape(n))
    return words


def file_chunks(path: str, *, average: int = FILE_CHUNK_BYTES) -> Iterator[tuple[int, int]]:
    """(offset, length) of content-defined chunks of a file (FastCDC 2020)."""
    from pyfastcdc import FastCDC

    for chunk in FastCDC(avg_size=average).cut_file(path):
        yield chunk.offset, chunk.length
