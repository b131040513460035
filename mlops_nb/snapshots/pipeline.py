"""Encoding chunks and storing them at the same time, on plain threads.

Storing waits on the disk (each chunk is fsynced) or the network; encoding waits on the
CPU. Done one batch after the other, each waited for the other: a third of a snapshot's
write went by with no encoding running. Here encoders keep going while earlier batches are
stored, with a bound on the batches in flight so memory stays a few batches deep.

Plain threads rather than concurrent.futures, whose pools refuse work once the interpreter
starts shutting down, which is when the last snapshots are written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Chunk = tuple[str, Any, int]  # digest, bytes, rows


def encode_and_store(makers: list[Callable[[], Chunk]], store: Callable[[Chunk], bool], *,
                     lease: Callable[[list[str]], None] | None = None, batch: int = 16,
                     encoders: int = 2, writers: int = 4, in_flight: int = 2) -> list[tuple[str, int, int, bool]]:  # fmt: skip
    """``(digest, size, rows, new)`` of each chunk ``makers`` make, in order, once ``store`` stored it.

    ``lease(digests)`` is called for each batch, in order, before any chunk of it is stored
    (so before the store is asked whether it has them). At most ``in_flight`` batches are
    encoded but not yet stored. The first error is raised once every thread has stopped.
    """
    n = len(makers)
    batches = [(s, min(s + batch, n)) for s in range(0, n, batch)]
    encoded: list[Chunk | None] = [None] * n
    results: list[tuple[str, int, int, bool] | None] = [None] * n
    encoded_in = [0] * len(batches)
    stored_in = [0] * len(batches)
    errors: list[BaseException] = []
    cond = threading.Condition()
    state = {"next": 0, "allowed": min(n, in_flight * batch)}
    work: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def fail(exc: BaseException) -> None:
        with cond:
            errors.append(exc)
            cond.notify_all()

    def encoder() -> None:
        while True:
            with cond:
                while not errors and state["next"] >= state["allowed"] and state["next"] < n:
                    cond.wait()
                if errors or state["next"] >= n:
                    return
                i = state["next"]
                state["next"] += 1
            try:
                chunk = makers[i]()
            except BaseException as exc:  # raised by the caller's thread below
                fail(exc)
                return
            with cond:
                encoded[i] = chunk
                encoded_in[i // batch] += 1
                cond.notify_all()

    def writer() -> None:
        while (i := work.get()) is not None:
            if errors:
                continue  # drain: the caller raises the first error
            chunk = encoded[i]
            assert chunk is not None
            try:
                new = store(chunk)
            except BaseException as exc:
                fail(exc)
                continue
            encoded[i] = None  # its bytes are stored: free them
            results[i] = (chunk[0], len(chunk[1]), chunk[2], new)
            with cond:
                stored_in[i // batch] += 1
                cond.notify_all()

    threads = [threading.Thread(target=encoder, name="mlops-snapshot-encode", daemon=True)
               for _ in range(max(1, min(encoders, n)))]  # fmt: skip
    threads += [threading.Thread(target=writer, name="mlops-snapshot-io", daemon=True)
                for _ in range(max(1, min(writers, n)))]  # fmt: skip
    for t in threads:
        t.start()
    try:
        for b, (start, stop) in enumerate(batches):
            with cond:
                while not errors and encoded_in[b] < stop - start:
                    cond.wait()
                if errors:
                    break
                digests = [c[0] for c in encoded[start:stop] if c is not None]
            if lease is not None:
                lease(digests)
            for i in range(start, stop):
                work.put(i)
            with cond:  # a batch more may be encoded once the one in_flight before this is stored
                while not errors and b + 1 >= in_flight and stored_in[b + 1 - in_flight] < _size(batches[b + 1 - in_flight]):
                    cond.wait()
                state["allowed"] = min(n, (b + 1 + in_flight) * batch)
                cond.notify_all()
    except BaseException as exc:
        fail(exc)
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def _size(span: tuple[int, int]) -> int:
    return span[1] - span[0]
