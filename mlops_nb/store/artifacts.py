"""Content-addressed artifact folder on any fsspec filesystem.

An artifact is stored at ``<root>/<dd>/<rest of digest>`` where the digest is
the SHA-256 of its bytes.  SHA-256 rather than a fast non-cryptographic hash:
artifacts are loaded as models, and the digest check is what makes a loaded
model the one that was recorded.  Writes go to a temporary name first and are
renamed into place, so a reader never sees a half-written file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


from ..errors import ArtifactError, ConfigError, IntegrityError

_CHUNK = 1 << 20
log = logging.getLogger("mlops_nb.artifacts")
_quieted: set[int] = set()


class ArtifactStore:
    """Content-addressed blobs under one fsspec URL.

    Parameters
    ----------
    url : str
        Local folder or fsspec URL (``s3://bucket/prefix``, ``memory://x``...).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        local = _local_folder(url)
        if local is not None:  # fsspec (40 ms to import) waits until a blob is read or written
            self.root, self._local, self._fs = local, True, None
            return
        fs, root = _url_to_fs(url)
        self._fs, self.root = fs, root.rstrip("/")
        self._local = "file" in _protocols(fs)
        if getattr(fs, "async_impl", False):
            _quiet_orphaned_transfers()

    @property
    def fs(self):
        """The fsspec filesystem holding the blobs."""
        if self._fs is None:
            self._fs = _url_to_fs(self.url)[0]
        return self._fs

    def path(self, digest: str) -> str:
        """Location of an artifact within the filesystem."""
        _check_digest(digest)
        return f"{self.root}/{digest[:2]}/{digest[2:]}"

    def local_path(self, digest: str) -> str | None:
        """The artifact's path on this machine's disk when the store is a local folder, else None
        (readers may then map the file instead of reading it into memory; nothing is verified)."""
        return self.path(digest) if self._local else None

    def exists(self, digest: str) -> bool:
        return self.fs.exists(self.path(digest))

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its digest.  Storing the same bytes twice is free."""
        return self.add(data)[0]

    def add(self, data: bytes | memoryview, digest: str | None = None, *, sync_folder: bool = True) -> tuple[str, bool]:
        """Store ``data`` (whose SHA-256 is ``digest`` when already known); return the
        digest and whether the bytes were new here.

        In a local folder the bytes are on disk when this returns, and with ``sync_folder``
        their name too; without it, :meth:`sync_folders` must follow before anything names them.
        """
        digest = digest or hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest, False
        self._atomic_write(digest, lambda f: f.write(data), sync_folder=sync_folder)
        return digest, True

    def sync_folders(self, digests: Iterable[str]) -> None:
        """Make the names of artifacts added with ``sync_folder=False`` durable (local folders:
        one fsync per folder they are in, not one per artifact)."""
        if self._local:
            for folder in sorted({self.path(d).rsplit("/", 1)[0] for d in digests}):
                _fsync_folder(folder)

    def delete(self, digest: str) -> int:
        """Remove an artifact; return the bytes freed (0 when it was already gone)."""
        target = self.path(digest)
        try:
            size = int(self.fs.size(target) or 0)
            self.fs.rm(target)
        except FileNotFoundError:
            return 0
        return size

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store the content of a local file; return its digest."""
        digest = _sha256_file(path)
        if not self.exists(digest):

            def copy(out: IO[bytes]) -> None:
                with open(path, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)

            self._atomic_write(digest, copy)
        return digest

    def get_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        """Read an artifact and verify it still matches its digest (``verify=False``: a caller that checks
        the content another way, and calls :meth:`check_bytes` to name a damaged artifact when that fails)."""
        target = self.path(digest)
        try:
            with self.fs.open(target, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ArtifactError(
                f"Artifact {digest[:12]} is missing from {self.url}: the artifact folder may have "
                "been moved or pruned. Point MLOPS_NB_ARTIFACTS_URL at the right folder.",
                digest=digest,
                url=self.url,
            ) from None
        if verify:
            self.check_bytes(digest, data, target)
        return data

    def check_bytes(self, digest: str, data: bytes, target: str | None = None) -> None:
        """Raise :class:`IntegrityError` unless ``data`` hashes to ``digest``."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            target = target or self.path(digest)
            raise IntegrityError(
                f"Artifact {digest[:12]} at {target} is corrupted (its content hashes to "
                f"{actual[:12]}). Do not load it; restore it from a backup or re-log the model.",
                digest=digest,
                actual=actual,
                path=target,
            )

    def get_file(self, digest: str, destination: str | os.PathLike[str]) -> Path:
        """Copy an artifact to a local file, verifying its digest."""
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(self.get_bytes(digest))
        os.replace(tmp, destination)
        return destination

    # ---- checks (mlops-nb doctor) -------------------------------------------------------
    def digests(self) -> Iterator[str]:
        """Digests of every artifact stored (temporary files of unfinished writes left out)."""
        prefix = f"{self.root}/"
        for path in self.fs.find(self.root) if self.fs.exists(self.root) else []:
            relative = _strip(path, prefix)
            head, _, tail = relative.partition("/")
            digest = head + tail
            if len(head) == 2 and "/" not in tail and _is_digest(digest):
                yield digest

    def verify(self, digest: str) -> str | None:
        """SHA-256 of the stored content of ``digest`` (equal to it when intact); None when missing.

        Streams the content, so artifacts larger than memory can be checked.
        """
        h = hashlib.sha256()
        try:
            with self.fs.open(self.path(digest), "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return None
        return h.hexdigest()

    def temp_files(self) -> list[dict[str, Any]]:
        """Leftovers of writes that never finished (the writer was killed): path, size, age_s."""
        folder = f"{self.root}/tmp"
        try:
            found = self.fs.find(folder, detail=True) if self.fs.exists(folder) else {}
        except FileNotFoundError:
            return []
        now = time.time()
        out = []
        for path, info in found.items():
            try:
                modified = self.fs.modified(path).timestamp()
            except (FileNotFoundError, NotImplementedError, AttributeError, ValueError):
                modified = now  # unknown age: treated as fresh, so never removed
            out.append({"path": path, "size": int(info.get("size") or 0), "age_s": max(0.0, now - modified)})
        return out

    def remove_temp_files(self, older_than_s: float) -> list[dict[str, Any]]:
        """Delete temporary files older than ``older_than_s`` seconds; return those removed.

        A younger file may belong to a write still in progress, so it stays.
        """
        removed = []
        for entry in self.temp_files():
            if entry["age_s"] >= older_than_s:
                try:
                    self.fs.rm(entry["path"])
                except FileNotFoundError:
                    continue  # its writer finished or another doctor got there first
                removed.append(entry)
        return removed

    def _atomic_write(self, digest: str, write, *, sync_folder: bool = True) -> None:
        final = self.path(digest)
        parent = final.rsplit("/", 1)[0]
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        try:
            new_folder = self._local and not os.path.isdir(parent)
            self.fs.makedirs(parent, exist_ok=True)
            self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
            if new_folder:  # the folder's own name, once
                _fsync_folder(self.root)
            with self.fs.open(tmp, "wb") as out:
                write(out)
                if self._local:
                    out.flush()
                    os.fsync(out.fileno())
            if self._local:
                os.replace(tmp, final)  # atomic on POSIX, also when two writers race
                if sync_folder:  # the new name survives a crash too, not only the bytes
                    _fsync_folder(parent)
            else:
                self.fs.mv(tmp, final)
        except OSError as exc:
            raise ArtifactError(
                f"Cannot write artifact {digest[:12]} to {self.url}: {exc}. "
                "Check that the folder is writable and has free space.",
                digest=digest,
                url=self.url,
            ) from None
        finally:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _local_folder(url: str) -> str | None:
    """The absolute folder a plain path or ``file://`` URL names; None for any other URL."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    elif "://" in url or "::" in url:
        return None
    return os.path.abspath(os.path.expanduser(url)).rstrip("/") or "/"


def _url_to_fs(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"Cannot use artifact URL {url!r}: {exc}. Install the fsspec backend for this "
            "protocol (e.g. s3fs for s3://) or use a local folder.",
            url=url,
        ) from None


def _protocols(fs) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _is_digest(digest: str) -> bool:
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _strip(path: str, prefix: str) -> str:
    # fsspec may return paths with or without the protocol or a leading slash.
    path = path.split("://", 1)[-1]
    bare = prefix.split("://", 1)[-1]
    for candidate in (bare, bare.lstrip("/")):
        if path.startswith(candidate):
            return path[len(candidate):]
    return path.lstrip("/")


def _check_digest(digest: str) -> None:
    if not _is_digest(digest):
        raise ArtifactError(f"{digest!r} is not an artifact digest (64 hex characters).", digest=digest)


def _sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _quiet_orphaned_transfers() -> None:
    """Async filesystems (s3fs) run on fsspec's own event loop. A connection cut mid-upload leaves
    transfer tasks whose errors nobody retrieves, and asyncio prints each with a traceback, although
    the upload's failure is already reported (an ArtifactError, the spool). Those go to the debug log;
    every other loop error keeps its handler."""
    try:
        from fsspec.asyn import get_loop

        loop = get_loop()
    except Exception:  # noqa: BLE001 - no loop, nothing to quiet
        return
    if id(loop) in _quieted:
        return
    _quieted.add(id(loop))
    previous = loop.get_exception_handler()

    def handler(loop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is not None and (isinstance(exc, OSError) or type(exc).__module__.startswith("aiohttp")):
            log.debug("an interrupted transfer's error: %s: %s", type(exc).__name__, exc)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.call_soon_threadsafe(loop.set_exception_handler, handler)
