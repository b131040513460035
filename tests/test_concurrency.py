"""Several processes writing to one fresh SQLite store at once lose nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

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


def _all_at_once(script: str, workers: int, per_worker: int, env: dict[str, str]) -> list[str]:
    """Run ``script`` in ``workers`` processes that start together; their outputs (each must succeed)."""
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(w), str(per_worker), str(start)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for w in range(workers)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(out)
    return outputs


def test_concurrent_writers_on_fresh_store(kernel_env, mlops_home):
    workers, per_worker = 4, 15
    _all_at_once(WRITER, workers, per_worker, kernel_env)
    store = get_store()
    runs = store.list_runs()
    assert len(runs) == workers * per_worker
    assert all(r["status"] == "finished" for r in runs)
    for w in range(workers):
        mine = [r for r in runs if r["name"] == f"w{w}"]
        assert sorted(int(r["params"]["i"]) for r in mine) == list(range(per_worker))
        assert sorted(r["metrics"]["accuracy"] for r in mine) == [w + i / 1000 for i in range(per_worker)]
    assert store.summary()["data_versions"] == workers  # one version per distinct array


GOVERNOR = textwrap.dedent(
    """
    import sys, time
    import mlops_nb
    worker, n, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    done = []
    for i in range(n):  # as batch members of a notebook that promotes, then undoes its promotion
        version = 2 + (worker + i) % 2
        mlops_nb.promote("iris", version, "production", reason=f"w{worker} i{i}")
        done.append(mlops_nb.rollback("iris", "production", from_version=version, reason=f"w{worker} i{i} undo").status)
    print(done.count("rolled_back"))
    """
)


def test_concurrent_promotions_and_rollbacks_all_land(kernel_env, mlops_home):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import mlops_nb

    X, y = load_iris(return_X_y=True)
    for c in (0.1, 1.0, 10.0):
        mlops_nb.register(LogisticRegression(C=c, max_iter=500).fit(X, y), name="iris")
    mlops_nb.promote("iris", 1, "production")
    workers, per_worker = 3, 8
    # an alias moved by another writer is re-read, not an error: every process succeeds
    rolled_back = sum(int(out) for out in _all_at_once(GOVERNOR, workers, per_worker, kernel_env))
    store = get_store()
    actions = [e["action"] for e in store.audit_log("model:iris")]
    assert actions.count("rollback") == rolled_back >= 1  # the others found the alias already moved on
    assert store.verify_audit_log() == []  # the hash chain is intact
