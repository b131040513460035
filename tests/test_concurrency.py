"""Several processes writing to one fresh SQLite store at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from mlops_nb.store import get_store

WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import mlops_nb
    worker, n, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    while time.time() < start:  # all writers hit the fresh store together
        time.sleep(0.001)
    data = np.arange(1000) * worker
    for i in range(n):
        with mlops_nb.track(name=f"w{worker}", inputs={"data": data}, tags={"i": i}) as run:
            run.log_metric("accuracy", worker + i / 1000)
            run.log_param("i", i)
    """
)


def test_concurrent_writers_on_fresh_store(kernel_env, mlops_home):
    import time

    workers, per_worker = 4, 15
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(per_worker), str(start)],
            env=kernel_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    store = get_store()
    runs = store.list_runs()
    assert len(runs) == workers * per_worker
    assert all(r["status"] == "finished" for r in runs)
    for w in range(workers):
        mine = [r for r in runs if r["name"] == f"w{w}"]
        assert sorted(int(r["params"]["i"]) for r in mine) == list(range(per_worker))
        assert sorted(r["metrics"]["accuracy"] for r in mine) == [w + i / 1000 for i in range(per_worker)]
    assert store.summary()["data_versions"] == workers  # one version per distinct array
