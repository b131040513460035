"""Files and directories.

A file is its size and content (not its name); a directory is every entry
sorted by relative path, symlinks by their target (not followed). Nothing is
ignored, not even ``.git``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import xxhash

from mlops_nb.errors import FingerprintError

from .framing import U64, atom, container, feed, type_name


def _feed_file(path: str | os.PathLike[str], h: Any) -> None:
    with open(path, "rb", buffering=0) as f:
        feed_file_content(_blocks(f), h)


def _blocks(f: Any) -> Iterator[memoryview]:
    buf = memoryview(bytearray(1 << 20))
    while n := f.readinto(buf):
        yield buf[:n]


def feed_file_content(blocks: Iterable[Any], h: Any) -> None:
    """A file as its size and content, from its bytes in any blocks (its name does not count)."""
    sub, size = xxhash.xxh3_128(), 0
    for block in blocks:
        sub.update(block)
        size += len(block)
    container(h, b"file", 2)
    atom(h, b"size", U64.pack(size))
    atom(h, b"content", sub.digest())


def walk(root: pathlib.Path) -> list[tuple[bytes, str, str]]:
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


@feed.register(pathlib.Path)
def _(p: pathlib.Path, h: Any) -> None:
    if p.is_file():
        return _feed_file(p, h)
    if not p.is_dir():
        raise FingerprintError(f"Cannot fingerprint path {p}: it is not an existing file or directory.",
                               type_name=type_name(type(p)))  # fmt: skip
    entries = walk(p)
    container(h, b"directory", len(entries))
    for rel, kind, full in entries:
        container(h, b"entry", 2)
        atom(h, b"path", rel)
        if kind == "file":
            _feed_file(full, h)
        else:
            atom(h, kind.encode(), os.fsencode(os.readlink(full)) if kind == "link" else b"")
