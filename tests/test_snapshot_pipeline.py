"""Encoding and storing snapshot chunks at the same time: leases first, order kept, memory
bounded, the first error raised with no thread left behind."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from mlops_nb.errors import ArtifactError
from mlops_nb.snapshots.pipeline import encode_and_store


def _makers(n: int, events: list, lock: threading.Lock, *, fail_at: int | None = None):
    def maker(i: int):
        def make():
            if i == fail_at:
                raise ValueError(f"cannot encode chunk {i}")
            data = f"chunk {i}".encode() * (i + 1)
            with lock:
                events.append(("encoded", i))
            return hashlib.sha256(data).hexdigest(), data, i + 1

        return make

    return [maker(i) for i in range(n)]


def test_chunks_are_leased_before_they_are_stored_and_come_back_in_order():
    events: list = []
    lock = threading.Lock()
    makers = _makers(100, events, lock)
    digests = [m()[0] for m in makers]
    events.clear()
    index = {d: i for i, d in enumerate(digests)}

    def lease(batch: list[str]) -> None:
        with lock:
            events.extend(("leased", index[d]) for d in batch)

    def store(chunk) -> bool:
        time.sleep(0.002)  # a disk: encoders run ahead while chunks are written
        with lock:
            events.append(("stored", index[chunk[0]]))
        return index[chunk[0]] % 2 == 0

    out = encode_and_store(makers, store, lease=lease, batch=8, encoders=2, writers=3, in_flight=2)
    assert [d for d, _, _, _ in out] == digests
    assert [(rows, new) for _, _, rows, new in out] == [(i + 1, i % 2 == 0) for i in range(100)]
    assert [size for _, size, _, _ in out] == [len(f"chunk {i}".encode() * (i + 1)) for i in range(100)]
    position = {e: k for k, e in enumerate(events)}
    assert all(position[("leased", i)] < position[("stored", i)] for i in range(100))
    # encoded but not yet stored: never more than the batches in flight, the one being leased and one being stored
    ahead, worst = 0, 0
    for kind, _ in events:
        ahead += {"encoded": 1, "stored": -1}.get(kind, 0)
        worst = max(worst, ahead)
    assert worst <= (2 + 2) * 8, worst


@pytest.mark.parametrize("where", ["encoder", "store", "lease"])
def test_the_first_error_is_raised_and_no_thread_is_left_running(where):
    events: list = []
    lock = threading.Lock()
    makers = _makers(60, events, lock, fail_at=37 if where == "encoder" else None)
    before = threading.active_count()

    def store(chunk) -> bool:
        if where == "store" and chunk[2] == 30:
            raise ArtifactError("Cannot write artifact: disk full")
        return True

    def lease(batch: list[str]) -> None:
        if where == "lease" and len(events) > 40:
            raise ArtifactError("database is locked")

    expected = {"encoder": "cannot encode chunk 37", "store": "disk full", "lease": "database is locked"}[where]
    with pytest.raises((ValueError, ArtifactError), match=expected):
        encode_and_store(makers, store, lease=lease, batch=8, encoders=2, writers=3)
    assert threading.active_count() == before


def test_one_chunk_and_no_lease():
    makers = _makers(1, [], threading.Lock())
    (digest, size, rows, new), = encode_and_store(makers, lambda chunk: False)
    assert (size, rows, new) == (len(b"chunk 0"), 1, False)
    assert digest == hashlib.sha256(b"chunk 0").hexdigest()
