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
    yield root
    gitstate._cache.clear()


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
