"""The scoring server side by side with `mlflow models serve` (the serving anchor), measured with `ab`.

The same StandardScaler + LogisticRegression pipeline on 30 features, fitted once here and
saved for each server (our registry; an MLflow model folder written by MLflow's own
environment, build/bench-mlflow-venv).  One worker each, on 127.0.0.1, ``ab -c 8`` with
single-row and 100-row ``dataframe_split`` bodies.  Ours runs twice: without and with
``--log-sample 0.1`` (the drift-logging sample), so the cost of logging is the difference.

Then a soak: ``--log-sample 0.1`` under load for MLOPS_NB_BENCH_SOAK seconds (default 120;
the issue's 10 minutes is 600), sampling the server's RSS and the registry's size on disk.

Needs ``ab`` (``apt-get install -y apache2-utils``; ``make bench`` installs it as root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _anchor_env import ROOT, anchor_python, ensure_ours
from _results import record

ensure_ours()

ABS = int(os.environ.get("MLOPS_NB_BENCH_REQUESTS", "3000"))
SOAK = float(os.environ.get("MLOPS_NB_BENCH_SOAK", "120"))
ROUNDS = 3  # turns of ours without and with logging; medians reported
N_FEATURES = 30
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]

MLFLOW_SAVE = r"""
import json, sys
import numpy as np, pandas as pd
import mlflow.sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
data = np.load(sys.argv[1])
X = pd.DataFrame(data["X"], columns=[f"f{i}" for i in range(data["X"].shape[1])])
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, data["y"])
mlflow.sklearn.save_model(model, sys.argv[2], input_example=X.head(2))
print(json.dumps({"ok": True}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def ab(port: int, body: Path, n: int = ABS, concurrency: int = 8) -> dict[str, float]:
    """``ab -c 8``: requests per second and the 50th/99th percentile in ms (all requests must succeed)."""
    out = subprocess.run(["ab", "-q", "-n", str(n), "-c", str(concurrency), "-p", str(body), "-T", "application/json",
                          f"http://127.0.0.1:{port}/invocations"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if failed or non2xx:
        raise RuntimeError(f"ab saw failed requests:\n{out}")
    return {
        "rps": float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1)),
        "p50": float(re.search(r"^\s+50%\s+(\d+)", out, re.M).group(1)),
        "p99": float(re.search(r"^\s+99%\s+(\d+)", out, re.M).group(1)),
    }


def bodies(folder: Path, X: np.ndarray) -> dict[str, Path]:
    paths = {}
    for rows in (1, 100):
        path = folder / f"body-{rows}.json"
        path.write_text(json.dumps({"dataframe_split": {"columns": COLUMNS, "data": X[:rows].round(6).tolist()}}))
        paths[f"{rows}"] = path
    return paths


def measure(port: int, paths: dict[str, Path]) -> dict[str, dict[str, float]]:
    ab(port, paths["1"], n=300)  # warm-up
    return {rows: ab(port, path) for rows, path in paths.items()}


def _rss_mb(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    if shutil.which("ab") is None:
        sys.exit("bench_serve needs ab: apt-get install -y apache2-utils")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mlops_nb
    import pandas as pd
    from mlops_nb.store import get_store

    work = Path(tempfile.mkdtemp(prefix="bench-serve-", dir=ROOT / "build"))
    X, y = make_classification(5000, N_FEATURES, n_informative=12, random_state=0)
    np.savez(work / "data.npz", X=X, y=y)
    paths = bodies(work, X)

    home = work / "mlops"
    store = get_store(f"sqlite:///{home / 'registry.db'}", str(home / "artifacts"))
    frame = pd.DataFrame(X, columns=COLUMNS)
    with mlops_nb.track(name="train", inputs={"train": frame}, store=store):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame, y)
        digest = mlops_nb.log_model(model, "model")
    mlops_nb.register(digest, name="bench", alias="production", store=store)

    mlflow_python = anchor_python("mlflow", ["mlflow>=3"])
    run_python = [str(mlflow_python), "-c", MLFLOW_SAVE, str(work / "data.npz"), str(work / "mlflow-model")]
    subprocess.run(run_python, check=True, capture_output=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    ours_env = dict(env, MLOPS_NB_STORE_URL=store.url, MLOPS_NB_ARTIFACTS_URL=store.artifacts.url)
    mlflow_env = dict(env, PATH=f"{mlflow_python.parent}:{env['PATH']}")

    def ours(*extra: str) -> tuple[subprocess.Popen, int]:
        port = _free_port()
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "mlops-nb"), "serve", "bench@production", "--no-auth",
                                 "--port", str(port), *extra], env=ours_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        _wait(f"http://127.0.0.1:{port}/health", proc)
        return proc, port

    results: dict[str, dict[str, dict[str, float]]] = {}
    port = _free_port()
    proc = subprocess.Popen([str(mlflow_python.parent / "mlflow"), "models", "serve", "-m", str(work / "mlflow-model"),
                             "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"], env=mlflow_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc)
        results["mlflow"] = measure(port, paths)
    finally:
        _stop(proc)
    # Both of ours at once, measured in turns (off, on, off, on...): the machine's load drifts, and a
    # difference between two runs minutes apart would measure that drift, not the logging.
    servers = {label: ours(*extra) for label, extra in (("ours", ()), ("ours+log", ("--log-sample", "0.1")))}
    try:
        for _, port in servers.values():
            ab(port, paths["1"], n=300)
        turns: dict[str, list[dict[str, dict[str, float]]]] = {label: [] for label in servers}
        for _ in range(ROUNDS):
            for label, (_, port) in servers.items():
                turns[label].append({rows: ab(port, path) for rows, path in paths.items()})
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    for label, runs in turns.items():
        results[label] = {rows: {k: float(np.median([r[rows][k] for r in runs])) for k in ("rps", "p50", "p99")}
                          for rows in paths}  # fmt: skip
    print(json.dumps(results), flush=True)

    mlflow = results["mlflow"]
    for label, name in (("ours", "logging off"), ("ours+log", "logging 10 %")):
        r = results[label]
        detail = lambda rows: (f"ours {r[rows]['rps']:.0f} req/s p99 {r[rows]['p99']:.0f} ms | mlflow "  # noqa: E731
                               f"{mlflow[rows]['rps']:.0f} req/s p99 {mlflow[rows]['p99']:.0f} ms, ab -c 8 -n {ABS}")  # fmt: skip
        record(f"serve 1 row, {name}: req/s vs mlflow models serve", r["1"]["rps"] / mlflow["1"]["rps"], unit="x",
               target=5, detail=detail("1"))  # fmt: skip
        record(f"serve 100 rows, {name}: req/s vs mlflow models serve", r["100"]["rps"] / mlflow["100"]["rps"],
               unit="x", target=3, detail=detail("100"))  # fmt: skip
        record(f"serve 1 row, {name}: p99", r["1"]["p99"], unit="ms", target=20, better="lower", noise=0.5,
               detail=f"mlflow models serve p99 {mlflow['1']['p99']:.0f} ms")  # fmt: skip
    added = results["ours+log"]["1"]["p99"] - results["ours"]["1"]["p99"]
    record("serve 1 row: p99 added by logging 10 %, end to end", added, unit="ms", target=1, better="lower", noise=5.0,
           detail=f"median of {ROUNDS} alternating ab runs each; ab reports whole milliseconds")  # fmt: skip
    record("serve: TrafficLog.offer p99 on the request path", offer_p99_us(), unit="us", target=1000, better="lower",
           noise=1.0, detail="100,000 single-row offers at sample 0.1 while its thread writes to a SQLite registry")  # fmt: skip

    try:
        soak(ours, paths["1"], home)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def offer_p99_us() -> float:
    """The request path's share of logging, timed call by call while the writer thread runs."""
    import pandas as pd
    from mlops_nb.scoring.traffic import TrafficLog
    from mlops_nb.store import get_store

    folder = Path(tempfile.mkdtemp(prefix="bench-offer-", dir=ROOT / "build"))
    try:
        store = get_store(f"sqlite:///{folder / 'registry.db'}", str(folder / "artifacts"))
        log = TrafficLog("bench@production", store, 0.1, flush_every=0.5).start()
        row = pd.DataFrame(np.zeros((1, N_FEATURES)), columns=COLUMNS)
        times = np.empty(100_000)
        clock = time.perf_counter
        for i in range(len(times)):
            start = clock()
            log.offer(row, 1)
            times[i] = clock() - start
            if i % 1000 == 0:
                time.sleep(0.001)  # like requests arriving: the writer gets its turns
        log.close()
        return float(np.percentile(times, 99) * 1e6)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def soak(ours, body: Path, home: Path) -> None:
    """Load with logging on for SOAK seconds: the server's RSS and the registry's growth, sampled."""
    if SOAK <= 0:
        return
    proc, port = ours("--log-sample", "0.1")
    samples = []
    try:
        ab(port, body, n=2000)  # warm: allocator pools, first flushes
        start = time.time()
        while time.time() - start < SOAK:
            stats = ab(port, body, n=2000)
            samples.append((time.time() - start, _rss_mb(proc.pid), _size_mb(home), stats["rps"]))
    finally:
        _stop(proc)
    if len(samples) < 4:
        return
    half = len(samples) // 2
    rss_first = max(s[1] for s in samples[:half])
    rss_last = max(s[1] for s in samples[half:])
    growth = (rss_last - rss_first) / rss_first * 100
    minutes = (samples[-1][0] - samples[0][0]) / 60
    disk_rate = (samples[-1][2] - samples[0][2]) / max(minutes, 1e-9)
    requests = sum(s[3] for s in samples) / len(samples)
    record("serve soak with logging 10 %: RSS growth, 2nd half vs 1st", growth, unit="%", target=5, better="lower",
           noise=0.1, detail=f"{SOAK:.0f} s, RSS {rss_first:.0f} -> {rss_last:.0f} MB, {requests:.0f} req/s")  # fmt: skip
    record("serve soak with logging 10 %: registry growth", disk_rate, unit="MB/min", target=None, better="lower",
           noise=1.0, detail=f"bounded by the sample: about {requests * 6:.0f} sampled rows a minute")  # fmt: skip


if __name__ == "__main__":
    main()
