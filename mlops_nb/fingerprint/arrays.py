"""numpy arrays, scalars, dtypes and masked arrays, and scipy sparse matrices.

An array is its dtype, shape and content in C order (strided views copied
block by block), NaNs canonicalised, structured arrays field by field. A
sparse matrix hashes as its canonical CSR form, whatever its format.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import xxhash

from .buffers import c_order_blocks, canonical_bytes
from .cache import cached, provably_immutable, remember
from .framing import atom, container, feed
from .objects import feed_objects


def np_dtype_token(dt: np.dtype) -> str:
    return _structured_token(dt) if dt.names else dt.str


@functools.lru_cache(maxsize=256)
def _structured_token(dt: np.dtype) -> str:
    return repr(dt)  # slow for structured dtypes (every tree of a forest has one)


feed.register(np.dtype, lambda o, h: atom(h, b"npdtype", np_dtype_token(o).encode()))


@feed.register(np.ndarray)
def feed_ndarray(a: np.ndarray, h: Any, tag: bytes = b"ndarray") -> None:
    container(h, tag, 3)
    atom(h, b"dtype", np_dtype_token(a.dtype).encode())
    atom(h, b"shape", np.asarray(a.shape, dtype="<i8"))
    atom(h, b"content", array_content(a))


feed.register(np.generic, lambda o, h: feed_ndarray(np.asarray(o), h, b"npscalar"))


@feed.register(np.ma.MaskedArray)
def _(a: np.ma.MaskedArray, h: Any) -> None:
    mask, data = np.ma.getmaskarray(a), np.ma.getdata(a)
    if mask.any():  # the value under a masked slot must not matter
        data = data.copy()
        data[mask] = np.zeros((), data.dtype)
    container(h, b"masked", 2)
    feed_ndarray(mask, h)
    feed_ndarray(data, h)


def array_content(a: np.ndarray) -> bytes:
    """16-byte digest of ``a``'s logical content (dtype and shape are framed by the caller)."""
    cacheable = provably_immutable(a)
    layout = (a.dtype.str, a.shape, a.strides)
    hit = cached(a, layout) if cacheable else None
    if hit is not None:
        return hit
    sub = xxhash.xxh3_128()
    if a.dtype.names:  # padding bytes between fields are garbage: hash field by field
        for name in a.dtype.names:
            atom(sub, b"field", array_content(a[name]))
    elif a.dtype.hasobject or a.dtype.kind == "T":  # StringDType buffers hold pointers
        feed_objects(a.astype(object, copy=False).reshape(-1), sub)
    else:
        for block in c_order_blocks(a):
            sub.update(canonical_bytes(block))
    digest = sub.digest()
    if cacheable:
        remember(a, layout, digest)
    return digest


def feed_sparse(m: Any, h: Any) -> None:
    """A scipy sparse matrix or array (scipy is never imported here: ``m`` brings it)."""
    m = m.tocsr(copy=True)
    m.eliminate_zeros()
    m.sum_duplicates()  # canonical CSR: the same matrix in any format hashes equal
    container(h, b"sparse", 5)
    atom(h, b"dtype", np_dtype_token(m.dtype).encode())
    atom(h, b"shape", np.asarray(m.shape, dtype="<i8"))
    for tag, part in ((b"indptr", m.indptr), (b"indices", m.indices), (b"data", m.data)):
        atom(h, tag, array_content(part.astype("<i8") if tag != b"data" else part))
