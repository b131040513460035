"""The working folder a job ran in, as it was when the job started: a scratch copy for its reproduction.

A notebook that writes into its folder (``incoming/*.parquet``, a model file)
and reads it back by glob finds, on a re-run in place, what its first run
left behind, and does something else.  Its reproduction therefore runs in a
temporary copy of the folder holding only the files that were there before
the job started (by modification time); files made or changed since are left
out, and the files the tracked runs read are put back from their snapshots.
Hidden folders (``.git``, ``.mlops``, virtual environments) are not copied.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

MAX_FILES = 20_000  # beyond these the folder is not copied: the reproduction runs in place, with a note
MAX_BYTES = 2 * 1024**3
_SKIP_DIRS = {"__pycache__", "node_modules"}


def _files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS]
        for name in names:
            path = Path(root) / name
            try:
                info = path.stat()
            except OSError:
                continue  # vanished or unreadable: nothing to copy
            if path.is_file():
                yield path, info


@contextlib.contextmanager
def folder_as_before(folder: Path, started: float, notes: list[str]) -> Iterator[Path]:
    """A temporary copy of ``folder`` without the files made or changed after ``started``; ``folder`` itself
    (with a note) when it is too big to copy or cannot be read."""
    keep: list[Path] = []
    later: list[str] = []
    total = 0
    try:
        for path, info in _files(folder):
            if info.st_mtime > started:
                later.append(str(path.relative_to(folder)))
                continue
            keep.append(path)
            total += info.st_size
            if len(keep) > MAX_FILES or total > MAX_BYTES:
                notes.append(f"ran in {folder} itself: it holds over {MAX_FILES:,} files or {MAX_BYTES / 1024**3:.0f} GB, "
                             "so files the first run wrote there are seen by the re-run too")  # fmt: skip
                yield folder
                return
    except OSError as exc:
        notes.append(f"ran in {folder} itself: it could not be read to copy ({exc})")
        yield folder
        return
    scratch = Path(tempfile.mkdtemp(prefix="mlops-reproduce-"))
    try:
        for path in keep:
            target = scratch / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        what = f"ran in a copy of {folder} as it was when the job started ({len(keep)} files)"
        if later:
            shown = ", ".join(sorted(later)[:5]) + (f" and {len(later) - 5} more" if len(later) > 5 else "")
            what += f"; left out, made or changed since: {shown}"
        notes.append(what)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
