"""What an outage costs: runs tracked while PostgreSQL is down, and how fast they reach it after.

A throwaway PostgreSQL server (Debian's binaries, as the tests use) holds the registry.
Measured, each as the user meets it through ``mlops_nb.track``:

1. a run (20 params, 20 metrics) with the server up, median of ``--runs``;
2. the same run with the server stopped (``pg_ctl -m fast``): refused connection, then the
   record fsynced into the local spool;
3. after the restart, ``mlops-nb sync`` from its shell prompt writing every waiting run;
4. runs present afterwards (must equal runs tracked: none lost, none twice).

    python benchmarks/bench_spool.py [--runs 100]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL server of the test suite
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402


def _one_run(mlops_nb, i: int) -> tuple[float, bool]:
    started = time.perf_counter()
    with mlops_nb.track(name=f"run-{i}") as run:
        run.log_params({f"p{k}": k * i for k in range(20)})
        for k in range(20):
            run.log_metric(f"m{k}", k / (abs(i) + 2))
    return time.perf_counter() - started, bool(run.queued)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    from pg_server import PostgresServer

    work = Path(tempfile.mkdtemp(prefix="bench-spool-"))
    server = PostgresServer()
    url = server.start()
    os.environ.update(MLOPS_NB_STORE_URL=url, MLOPS_NB_ARTIFACTS_URL=str(work / "artifacts"),
                      MLOPS_NB_SPOOL_DIR=str(work / "spool"))  # fmt: skip
    try:
        import mlops_nb
        from mlops_nb.store import clear_cache, get_store

        get_store(create=True)
        _one_run(mlops_nb, -1)  # warm-up
        up = [_one_run(mlops_nb, i)[0] for i in range(args.runs)]
        server.pause()
        clear_cache()
        down = [_one_run(mlops_nb, args.runs + i) for i in range(args.runs)]
        assert all(queued for _, queued in down), "a run was not queued while the server was down"
        server.resume()
        started = time.perf_counter()
        sync = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "sync"], capture_output=True, text=True)
        sync_s = time.perf_counter() - started
        assert sync.returncode == 0, sync.stdout + sync.stderr
        clear_cache()
        names = [r["name"] for r in get_store(url).list_runs()]
        expected = 2 * args.runs + 1
        print(f"| what | {args.runs} runs, 20 params + 20 metrics each |\n| --- | --- |")
        print(f"| a run, server up (median) | {statistics.median(up) * 1e3:.1f} ms |")
        print(f"| a run, server down: queued in the spool (median) | {statistics.median(t for t, _ in down) * 1e3:.1f} ms |")
        print(f"| `mlops-nb sync` after the restart, from the shell prompt | {sync_s:.2f} s for {args.runs} runs "
              f"({args.runs / sync_s:.0f} runs/s, start-up included) |")
        print(f"| runs in the registry afterwards | {len(names)} of {expected} tracked, "
              f"{len(names) - len(set(names))} twice |")
        up_ms, down_ms = statistics.median(up) * 1e3, statistics.median(t for t, _ in down) * 1e3
        # What a user waits for while the server is down. (A ratio to the written run, as before, rose
        # whenever the written run got faster: no regression guard should read that as one.)
        _results.record("run while the team database is down: queued in the spool", down_ms, unit="ms", target=None,
                        better="lower", detail=f"median of {args.runs} runs, 20 params + 20 metrics; with the server "
                        f"up a run is written in {up_ms:.1f} ms ({down_ms / up_ms:.2f}x)")  # fmt: skip
        counts = collections.Counter(names)
        once = sum(counts[f"run-{i}"] == 1 for i in range(-1, 2 * args.runs))
        _results.record("runs recorded once after an outage", once / expected * 100, unit="% of runs", target=100,
                        noise=0.0, detail=f"{once} of {expected} tracked runs in the registry exactly once "
                        f"after `mlops-nb sync` ({sync_s:.2f} s)")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main()
