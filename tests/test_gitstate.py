"""The git state kept per work tree: reused only while git's own view provably holds."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from mlops_nb import gitstate


def _git(repo, *args):
    return subprocess.run(
        ["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def _settle():
    """Let every file become older than the racy window (shortened for the tests)."""
    time.sleep(gitstate.RACY_NS / 1e9 + 0.05)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    _git(root, "init", "-q")
    for name in ("train.py", "src/util.py"):
        (root / name).write_text("x = 1\n")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "code")
    monkeypatch.setattr(gitstate, "RACY_NS", 200_000_000)
    _settle()
    gitstate._cache.clear()
    gitstate._trees.clear()
    yield root
    gitstate._cache.clear()
    gitstate._trees.clear()


def _calls(monkeypatch):
    asked = []
    real = gitstate._git_status
    monkeypatch.setattr(gitstate, "_git_status", lambda cwd: asked.append(cwd) or real(cwd))
    return asked


def test_an_answer_is_reused_until_a_tracked_file_changes(repo, monkeypatch):
    asked = _calls(monkeypatch)
    head = _git(repo, "rev-parse", "HEAD")
    assert gitstate.git_state(repo) == (head, False)
    assert gitstate.git_state(repo / "src") == (head, False)
    assert gitstate.prefetch_git_state(repo).result() == (head, False)
    assert len(asked) == 1  # one git status for three runs of an untouched tree

    (repo / "src" / "util.py").write_text("x = 2\n")  # same size, same second
    assert gitstate.git_state(repo) == (head, True)
    assert gitstate.git_state(repo) == (head, True)  # just edited: racy, so git is asked each time
    assert len(asked) == 3


def test_an_edit_in_the_same_clock_tick_as_the_answer_is_seen(repo):
    """Two same-size writes can share a coarse file time: a fresh file is never trusted."""
    head = _git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("x = 1\n")  # rewritten with the committed text: clean, but fresh
    assert gitstate.git_state(repo) == (head, False)
    (repo / "train.py").write_text("x = 3\n")
    assert gitstate.git_state(repo) == (head, True)


def test_commits_staging_deletes_and_touches_are_followed(repo):
    head = _git(repo, "rev-parse", "HEAD")
    assert gitstate.git_state(repo) == (head, False)
    os.utime(repo / "train.py")  # touched, content unchanged: asked again, still clean
    assert gitstate.git_state(repo) == (head, False)

    (repo / "new.py").write_text("y = 1\n")
    assert gitstate.git_state(repo) == (head, False)  # untracked files do not make a tree dirty
    _git(repo, "add", "new.py")
    assert gitstate.git_state(repo) == (head, True)  # staged: the index changed
    _git(repo, "commit", "-q", "-m", "more")
    head2 = _git(repo, "rev-parse", "HEAD")
    assert head2 != head
    assert gitstate.git_state(repo) == (head2, False)

    _settle()
    assert gitstate.git_state(repo) == (head2, False)
    (repo / "new.py").unlink()
    assert gitstate.git_state(repo) == (head2, True)
    _git(repo, "checkout", "-q", "--", "new.py")
    _git(repo, "checkout", "-q", "-b", "other")
    assert gitstate.git_state(repo) == (head2, False)


def test_outside_a_work_tree_and_with_submodules(repo, tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    assert gitstate.git_state(outside) == (None, None)
    asked = _calls(monkeypatch)
    (repo / ".gitmodules").write_text("")
    gitstate.git_state(repo)
    gitstate.git_state(repo)
    assert len(asked) == 2  # submodules have state of their own: never kept


def _file_stats(monkeypatch, repo):
    """How many times the tracked files themselves were stat-ed (the refs are always)."""
    seen = []
    real = gitstate._signature
    git_dir = os.fsencode(repo / ".git")
    monkeypatch.setattr(gitstate, "_signature", lambda path: seen.append(path) or real(path))
    return lambda: [p for p in seen if not p.startswith(git_dir)]


def _inotify_instances() -> int:
    return sum(os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify" for fd in os.listdir("/proc/self/fd")
               if os.path.exists(f"/proc/self/fd/{fd}"))  # fmt: skip


def _watched(repo, head):
    """Ask often enough for the process to spend an inotify watch on the tree."""
    for _ in range(gitstate.WATCH_AFTER + 1):
        assert gitstate.git_state(repo) == (head, False)


@pytest.mark.skipif(not os.path.exists("/proc/sys/fs/inotify"), reason="inotify is Linux's")
def test_a_quiet_tree_is_vouched_for_by_inotify_without_a_stat_of_its_files(repo, monkeypatch):
    head = _git(repo, "rev-parse", "HEAD")
    before = _inotify_instances()
    for _ in range(gitstate.WATCH_AFTER):
        assert gitstate.git_state(repo) == (head, False)
    assert _inotify_instances() == before  # a process asking a few times spends none of the user's budget
    _watched(repo, head)
    assert _inotify_instances() == before + 1
    stats = _file_stats(monkeypatch, repo)
    assert gitstate.git_state(repo) == (head, False)
    assert stats() == []  # nothing happened: not one tracked file stat-ed

    (repo / "notes.txt").write_text("untracked")  # in a watched folder, but not a tracked name
    (repo / "src" / "scratch.py").write_text("y = 0\n")
    assert gitstate.git_state(repo) == (head, False)
    assert stats() == []

    os.utime(repo / "src" / "util.py")  # an event naming a tracked file: back to the stats, then git
    assert gitstate.git_state(repo) == (head, False)
    assert stats()


def test_renaming_a_folder_above_tracked_files_is_seen(repo):
    """The move happens in the parent folder: the files' own folder sees no event."""
    deep = repo / "pkg" / "sub"
    deep.mkdir(parents=True)
    (deep / "mod.py").write_text("z = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "deep")
    head = _git(repo, "rev-parse", "HEAD")
    _settle()
    _watched(repo, head)
    (repo / "pkg").rename(repo / "pkg2")
    assert gitstate.git_state(repo) == (head, True)


def test_a_forked_child_neither_trusts_nor_steals_the_parents_events(repo):
    head = _git(repo, "rev-parse", "HEAD")
    _watched(repo, head)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child edits a tracked file and asks: its own check must see the edit
        try:
            (repo / "train.py").write_text("x = 5\n")
            os.write(writer, repr(gitstate.git_state(repo)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as answer:
        assert answer.read() == repr((head, True))
    os.waitpid(pid, 0)
    assert gitstate.git_state(repo) == (head, True)  # the parent still got the event of the edit
