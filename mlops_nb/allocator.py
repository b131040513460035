"""Keep large numpy temporaries in the heap instead of mapping fresh pages for each.

glibc serves every allocation above its mmap threshold (128 KiB at start) with
fresh pages from the kernel and returns heap tops above its trim threshold on
free. Column-wise work (drift tests, profiles, snapshots) allocates and frees
many arrays of a few MiB, so it pays a page fault per 4 KiB touched, again for
every column: on this project's 2-core VM that made drift of 200,000 x 25 rows
take 0.42 s instead of 0.26 s. glibc raises both thresholds by itself as large
blocks are freed, but only up to 32 MiB / 64 MiB, and trims before reaching
them; :func:`tune` sets those ceilings at once. That is at most 64 MiB of freed
memory kept for reuse, what a long-lived pandas process converges to anyway.

Set ``MLOPS_NB_MALLOC_TUNING=0`` to leave the allocator alone. Elsewhere than
glibc (macOS, Windows, musl) :func:`tune` does nothing.
"""

from __future__ import annotations

import os
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 64 << 20  # twice the mmap threshold, as glibc's dynamic rule sets it

_outcome: bool | None = None  # what the one attempt of this process gave


def tune() -> bool:
    """Set glibc's mmap/trim thresholds once per process; True when they are set."""
    global _outcome
    if _outcome is None:
        _outcome = _apply()
    return _outcome


def _apply() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("MLOPS_NB_MALLOC_TUNING", "1") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: other parameters
            return False
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        return libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    except (OSError, AttributeError):
        return False
