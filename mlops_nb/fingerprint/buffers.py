"""numpy buffers as hashable bytes: bounded C-order blocks, every NaN made canonical."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# 4 MiB blocks: big enough to amortise call overhead, small enough that a NaN
# fix-up or a strided copy stays in cache.
BLOCK = 1 << 22


def c_order_blocks(a: np.ndarray) -> Iterator[np.ndarray]:
    """Yield 1-D contiguous blocks whose concatenation is ``a`` in C order."""
    a = np.asarray(a)  # np.matrix rows stay 2-D and would never bottom out
    if a.size == 0 or a.itemsize == 0:
        return
    if a.flags.c_contiguous:  # no copy
        flat, step = a.reshape(-1), max(1, BLOCK // a.itemsize)
        for i in range(0, flat.size, step):
            yield flat[i : i + step]
        return
    # Strided view: copy a few leading-axis slices at a time, never the whole array.
    row = a.nbytes // a.shape[0]
    if row > BLOCK and a.ndim > 1:
        for sub in a:
            yield from c_order_blocks(sub)
        return
    step = max(1, BLOCK // row)
    for i in range(0, a.shape[0], step):
        yield np.ascontiguousarray(a[i : i + step]).reshape(-1)


def canonical_bytes(block: np.ndarray) -> np.ndarray:
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
