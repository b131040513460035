"""Framing of scheme ``mlops_nb-fp-v1`` and the ``feed`` dispatcher the encoders register with.

Every component is framed as ``len(tag) | tag | uint64 length-or-count |
payload`` so that concatenations cannot collide; large payloads go into
framed sub-digests (``xxh3_128``).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

import xxhash

from mlops_nb.errors import FingerprintError

VERSION = b"mlops_nb-fp-v1"
U64 = struct.Struct("<Q")
_SUPPORTED = (
    "pandas DataFrame/Series/Index/ExtensionArray, numpy arrays and scalars, pyarrow arrays, "
    "scipy sparse matrices, pathlib.Path (file or directory), scikit-learn estimators, None/bool/int/float/complex/"
    "str/bytes/date/time/Decimal/UUID, and lists, tuples, dicts and sets of these"
)


def type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def atom(h: Any, tag: bytes, data: Any = b"") -> None:
    """Frame a leaf: tag, byte length, bytes."""
    view = memoryview(data)
    h.update(bytes([len(tag)]) + tag + U64.pack(view.nbytes))
    h.update(view)


def container(h: Any, tag: bytes, count: int) -> None:
    """Frame a container header; ``count`` framed children follow."""
    h.update(bytes([len(tag)]) + tag + U64.pack(count))


@functools.singledispatch
def feed(obj: Any, h: Any) -> None:
    """Write the framed encoding of ``obj`` into hasher ``h``.

    Each encoder module registers its types; :mod:`.optional` replaces this
    default with the lookup of optional libraries' types.
    """
    raise unsupported(obj)


def digest(obj: Any) -> bytes:
    """The 16-byte sub-digest of ``obj``'s framed encoding."""
    sub = xxhash.xxh3_128()
    feed(obj, sub)
    return sub.digest()


def framed(tag: bytes, content: Callable[[Any], Any]) -> Callable[[Any, Any], None]:
    """A handler that frames ``content(obj)`` under ``tag``."""

    def handler(obj: Any, h: Any) -> None:
        container(h, tag, 1)
        feed(content(obj), h)

    return handler


def unsupported(obj: Any) -> FingerprintError:
    name = type_name(type(obj))
    return FingerprintError(
        f"Cannot fingerprint an object of type {name}. Supported: {_SUPPORTED}. "
        "Convert it to one of these (e.g. a DataFrame) or fingerprint the file it came from.",
        type_name=name,
    )
