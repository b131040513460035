"""The git state of a run: the commit checked out and whether the work tree differs from it.

A ``git status`` costs a process (2-3 ms, more than the rest of a small run), so the answer is
kept per work tree and reused while nothing git looks at has changed: ``HEAD``, the ref it names,
``packed-refs``, the index, and the ``stat`` of every tracked file, the way git itself decides
which files to read again. A file modified within :data:`RACY_NS` of the answer is never trusted
(file times come from a coarse clock, so a second edit may keep the same time and size, git's
"racily clean" case): while one exists, every run asks git again. Work trees with submodules,
linked work trees, more than :data:`MAX_CACHED_FILES` tracked files, or a ``GIT_DIR`` /
``GIT_WORK_TREE`` in the environment always ask git.

Stat-ing every tracked file is itself 0.3-1 ms a run in a few hundred files, so on Linux a
process that keeps asking (:data:`WATCH_AFTER`) also watches the folders of the tracked files
with inotify (as git's own fsmonitor does): while no event has named a tracked file, the answer
holds without a single ``stat`` of them. An event
(or a watch that could not be set, a fork, an overflowing queue) sends the check back to the
``stat`` of every file; the refs are always checked by their ``stat``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from .file_watch import FileWatch

#: How long the work tree holding a folder (or that none does) is remembered.
NO_GIT_S = 10.0
#: A tracked file modified less than this before the answer makes the answer untrustworthy.
RACY_NS = 2_000_000_000
#: Above this many tracked files, stat-ing them all costs what ``git status`` does.
MAX_CACHED_FILES = 5000
#: Stat checks of one answer before its folders are watched: inotify instances are a small
#: per-user budget (128 on many systems), so only a process that keeps asking spends one.
WATCH_AFTER = 3

State = tuple[str | None, bool | None]

_trees: dict[Path, tuple[float, tuple[Path, Path] | None]] = {}  # cwd -> (when, its work tree or None)
_cache: dict[Path, _Answer] = {}  # work tree root -> the last trustworthy answer
_lock = threading.Lock()


@dataclass
class _Answer:
    state: State
    refs: tuple  # (path, stat signature) of HEAD, packed-refs, the index and the ref HEAD names
    files: tuple[tuple[bytes, tuple], ...]  # (absolute path, stat signature) per tracked file
    names: list[bytes] | None  # the tracked files relative to the root, until a watch is tried
    checks: int = 0  # times it was found to hold by the stat of every file
    watch: FileWatch | None = None  # inotify on their folders, set before a stat check it vouches for


def git_state(path: str | os.PathLike[str] | None = None) -> State:
    """(commit, dirty) of the git work tree containing ``path``; (None, None) outside one.

    Outside a work tree no process is started (a few ``stat`` calls tell, and the answer is kept
    :data:`NO_GIT_S` seconds); inside one, ``git status`` is asked unless its last answer for this
    work tree provably still holds (see the module's docstring): an edit between two runs shows.
    """
    cwd = Path(path or os.getcwd())
    if _git_env():
        return _git_status(cwd)
    found = _work_tree(cwd)
    if found is None:
        return None, None
    kept = _kept(*found)
    return kept if kept is not None else _refresh(cwd, *found)


def prefetch_git_state(path: str | os.PathLike[str] | None = None) -> Future | None:
    """A Future of :func:`git_state` of ``path``, taken from now (a run starting); None outside a
    work tree. A kept answer that still holds is given at once; a ``git status`` runs in a thread
    so that it overlaps the run's own work."""
    cwd = Path(path or os.getcwd())
    future: Future = Future()
    if _git_env():
        ask = lambda: _git_status(cwd)  # noqa: E731
    else:
        found = _work_tree(cwd)
        if found is None:
            return None
        kept = _kept(*found)
        if kept is not None:
            future.set_result(kept)
            return future
        ask = lambda: _refresh(cwd, *found)  # noqa: E731  (the kept answer was just found stale)

    def work() -> None:
        try:
            future.set_result(ask())
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="mlops-git-state", daemon=True).start()
    return future


def _env() -> dict[str, str]:
    return {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # a status never rewrites the user's index


def _git_env() -> bool:
    return any(os.environ.get(v) for v in ("GIT_DIR", "GIT_WORK_TREE"))


def _git_status(cwd: Path) -> State:
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10, env=_env(),
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    if done.returncode != 0:
        return None, None
    lines = done.stdout.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # a repository without a commit yet
        return None, None
    return commit, any(not line.startswith("#") for line in lines if line.strip())


def _refresh(cwd: Path, gitdir: Path, root: Path) -> State:
    """Ask git, and keep the answer when it can be checked cheaply later."""
    if gitdir.parent != root or (root / ".gitmodules").exists():
        _cache.pop(root, None)
        return _git_status(cwd)
    refs = _ref_signatures(gitdir)  # before git runs: a change while it runs shows next time
    names = _tracked_names(root)
    files = _tracked_files(root, names) if names is not None else None
    state = _git_status(cwd)
    with _lock:
        _drop(root)
        if files is not None and state[0] is not None:
            _cache[root] = _Answer(state, refs, files, names)
    return state


def _kept(gitdir: Path, root: Path) -> State | None:
    """The kept answer for the work tree at ``root`` when it still holds, else None."""
    cached = _cache.get(root)
    if cached is None or not _same_refs(cached.refs):
        return None
    if cached.watch is not None and cached.watch.quiet():
        return cached.state
    if cached.names is not None and cached.checks + 1 >= WATCH_AFTER:
        with _lock:
            if cached.names is not None:  # started before the stat check below: it sees what follows
                cached.watch = FileWatch.start(root, cached.names)
                cached.names = None
    if not all(_signature(path) == signature for path, signature in cached.files):
        return None
    cached.checks += 1
    if cached.watch is not None:
        cached.watch.vouch()  # the events so far changed nothing git looks at
    return cached.state


def _drop(root: Path) -> None:
    old = _cache.pop(root, None)
    if old is not None and old.watch is not None:
        old.watch.close()


def _tracked_names(root: Path) -> list[bytes] | None:
    """The tracked files of the work tree at ``root`` (relative), or None when too many or unknown."""
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, timeout=10, env=_env())
    except (OSError, subprocess.SubprocessError):
        return None
    names = [name for name in done.stdout.split(b"\0") if name]
    if done.returncode != 0 or len(names) > MAX_CACHED_FILES:
        return None
    return names


def _tracked_files(root: Path, names: list[bytes]) -> tuple[tuple[bytes, tuple], ...] | None:
    """Each tracked file with its stat signature; None when they cannot all be trusted."""
    base = os.fsencode(root) + b"/"
    racy_after = time.time_ns() - RACY_NS
    files = []
    for name in names:
        signature = _signature(base + name)
        if signature is None or max(signature[0], signature[1]) > racy_after:
            return None  # gone, unreadable, or edited too recently to be told from a later edit
        files.append((base + name, signature))
    return tuple(files)


def _ref_signatures(gitdir: Path) -> tuple[tuple[bytes, tuple | None], ...]:
    """(path, stat signature) of ``HEAD``, the ref it names, ``packed-refs`` and the index.

    Git replaces each of them by a rename, so a change always shows in the signature (a new
    inode); the kept answer is checked against the same paths (:func:`_same_refs`), without
    reading ``HEAD`` again.
    """
    head = gitdir / "HEAD"
    try:
        target = head.read_text(errors="replace").strip()
    except OSError:
        target = ""
    paths = [head, gitdir / "packed-refs", gitdir / "index"]
    if target.startswith("ref:"):
        paths.append(gitdir / target[4:].strip())
    return tuple((os.fsencode(path), _signature(os.fsencode(path))) for path in paths)


def _same_refs(refs: tuple[tuple[bytes, tuple | None], ...]) -> bool:
    return all(_signature(path) == signature for path, signature in refs)


def _signature(path: bytes) -> tuple | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode


def _work_tree(cwd: Path) -> tuple[Path, Path] | None:
    """(git directory, work tree root) of the work tree holding ``cwd``, or None outside one.

    Either answer is kept :data:`NO_GIT_S` seconds for ``cwd``: runs come many a second, a
    ``git init`` or a moved ``.git`` seldom.
    """
    when, found = _trees.get(cwd, (-NO_GIT_S, None))
    if time.monotonic() - when < NO_GIT_S:
        return found
    found = _find_work_tree(cwd)
    _trees[cwd] = (time.monotonic(), found)
    return found


def _find_work_tree(cwd: Path) -> tuple[Path, Path] | None:
    try:
        folder = cwd.resolve()
    except OSError:
        return None
    for parent in (folder, *folder.parents):
        dot_git = parent / ".git"
        if dot_git.is_dir():
            return dot_git, parent
        if dot_git.is_file():  # a linked work tree or a submodule: "gitdir: PATH"
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                return (parent / text.partition(":")[2].strip()).resolve(), parent
    return None
