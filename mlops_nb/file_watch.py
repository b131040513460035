"""Whether any of a set of files may have changed since a moment, told without a ``stat`` of each.

Linux's inotify reports every change under a watched folder as it happens, so a question asked
per run ("has any tracked file changed?") costs one ``ioctl`` while nothing has, whatever the
number of files. Elsewhere, or when the kernel refuses a watch, :meth:`FileWatch.start` gives
None and the caller checks the files itself.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Iterable

#: More folders than this are not worth a watch each (inotify watches are a per-user budget).
MAX_FOLDERS = 2000


class FileWatch:
    """Reports whether any of ``names`` (relative to ``root``) may have changed since :meth:`start`.

    The answer errs one way only: an event that names a watched file or a folder on its way,
    moves or removes a watched folder itself, or overflows the queue makes :meth:`quiet` false until :meth:`vouch` says the files
    were checked since. It is only trusted in the process that made it (a forked child sees
    the same queue: reading it there would steal the parent's events).
    """

    def __init__(self, inotify, folders: dict[int, frozenset[bytes]]) -> None:
        self._inotify = inotify
        self._folders = folders  # watch descriptor -> names watched in that folder
        self._pid = os.getpid()
        self._changed = False
        self._lock = threading.Lock()

    @classmethod
    def start(cls, root: str | os.PathLike[str], names: Iterable[bytes]) -> FileWatch | None:
        """Watch ``names`` (paths relative to ``root``, as bytes) from now; None when it cannot."""
        by_folder: dict[bytes, set[bytes]] = defaultdict(set)
        base = os.fsencode(root)
        for name in names:
            # Every folder on the way down, naming the next step: a rename of an ancestor
            # moves the file without any event in the file's own folder.
            parts = name.split(b"/")
            folder = base
            for part in parts:
                by_folder[folder].add(part)
                folder = os.path.join(folder, part)
        if not by_folder or len(by_folder) > MAX_FOLDERS:
            return None
        try:
            from inotify_simple import INotify, flags
        except (ImportError, OSError, AttributeError):  # not Linux, or no inotify in its libc
            return None
        mask = (
            flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.MOVED_FROM | flags.MOVED_TO
            | flags.CREATE | flags.DELETE | flags.DELETE_SELF | flags.MOVE_SELF | flags.ONLYDIR
        )  # fmt: skip
        try:
            inotify = INotify(nonblocking=True)
        except OSError:  # the user's inotify instances are used up
            return None
        folders = {}
        try:
            for folder, leaves in by_folder.items():
                folders[inotify.add_watch(folder, mask)] = frozenset(leaves)
        except OSError:  # out of watches, or a folder gone meanwhile
            inotify.close()
            return None
        return cls(inotify, folders)

    def quiet(self) -> bool:
        """True when no watched file can have changed since :meth:`start` (or the last :meth:`vouch`)."""
        if os.getpid() != self._pid:
            return False
        with self._lock:
            if self._inotify.closed:
                return False
            if not self._changed:
                try:
                    events = self._inotify.read(timeout=0)
                except OSError:
                    events = None
                self._changed = events is None or any(self._matters(event) for event in events)
            return not self._changed

    def vouch(self) -> None:
        """The caller checked every file after the events read so far: start afresh from them."""
        if os.getpid() == self._pid:
            with self._lock:
                self._changed = False

    def close(self) -> None:
        """Remove the watches (only in the process that made them)."""
        if os.getpid() == self._pid:
            with self._lock:
                self._inotify.close()

    def _matters(self, event) -> bool:
        from inotify_simple import flags

        leaves = self._folders.get(event.wd)
        if leaves is None or event.mask & (flags.Q_OVERFLOW | flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF):
            return True
        return os.fsencode(event.name) in leaves
