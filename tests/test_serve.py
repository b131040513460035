"""The model server on 127.0.0.1 (real uvicorn process, real HTTP) following its alias."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from scoring_support import train_churn

import mlops_nb
from mlops_nb.monitoring.datasets import FEATURES, churn_frame

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

MAX_REQUESTS = 1500  # the load test is bounded in count…
DEADLINE = 120.0  # …and in time, whatever happens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(ref: str, env: dict[str, str], *options: str):
    """``mlops-nb serve REF`` in its own process, answering /health; yields its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nb.cli", "serve", ref, "--port", str(port), "--no-auth", *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to ~60 s for imports and the first load
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer /health")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(store, kernel_env):
    """Start ``mlops-nb serve churn@production`` in its own process; yield its base URL."""
    train_churn(store)
    with serving("churn@production", kernel_env, "--poll", "0.2") as url:
        yield url


def test_mlflow_shapes_health_version_and_errors(server):
    rows = churn_frame(5, seed=2)[FEATURES]
    expected = mlops_nb.load_model("churn:1").predict(rows).tolist()
    shapes = [
        {"dataframe_split": rows.to_dict(orient="split")},
        {"dataframe_records": rows.to_dict(orient="records")},
        {"inputs": rows.to_dict(orient="list")},
        {"inputs": rows.to_dict(orient="records")},
        {"inputs": rows.values.tolist()},
    ]
    for body in shapes:
        r = httpx.post(f"{server}/invocations", json=body, timeout=10)
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["predictions"] == expected and (data["model"], data["version"]) == ("churn", 1)
        assert r.headers["x-mlops-model-version"] == "1" and len(data["probabilities"]) == 5
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    info = httpx.get(f"{server}/version").json()
    assert info["ref"] == "churn:1" and info["follows"] == "churn@production" and "monthly_charges" in info["schema"]
    bad = httpx.post(f"{server}/invocations", json={"dataframe_records": rows.drop(columns="plan").to_dict(orient="records")})
    assert bad.status_code == 400 and "missing column(s) plan" in bad.json()["message"]
    assert httpx.post(f"{server}/invocations", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert httpx.post(f"{server}/invocations", json={"rows": []}).status_code == 400


def test_alias_switch_under_load_drops_nothing(server, store):
    v2 = train_churn(store, seed=7, alias=None)
    body = {"dataframe_records": churn_frame(20, seed=3)[FEATURES].to_dict(orient="records")}
    results: list[tuple[float, float, int | str, str | None]] = []  # (start, end, version or error, header)
    lock = threading.Lock()
    switched_at: list[float] = []
    first_v2: list[float] = []
    stop = threading.Event()
    t_end = time.monotonic() + DEADLINE

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set() and time.monotonic() < t_end:
                with lock:
                    if len(results) >= MAX_REQUESTS:
                        return
                start = time.monotonic()
                try:
                    r = client.post(f"{server}/invocations", json=body)
                    outcome = r.json()["version"] if r.status_code == 200 else f"HTTP {r.status_code}: {r.text}"
                    header = r.headers.get("x-mlops-model-version")
                except Exception as exc:  # a dropped connection is exactly what this test looks for
                    outcome, header = f"{type(exc).__name__}: {exc}", None
                end = time.monotonic()
                with lock:
                    results.append((start, end, outcome, header))
                    n = len(results)
                    if outcome == v2.version and not first_v2:
                        first_v2.append(end)
                    # enough answers from v2 after the switch: done
                    if first_v2 and sum(1 for s, _, o, _ in results if s > first_v2[0]) >= 100:
                        stop.set()
                if n == 100 and not switched_at:
                    switched_at.append(time.monotonic())
                    mlops_nb.promote("churn", v2.version, "production", reason="load test switch")

    with ThreadPoolExecutor(max_workers=8) as pool:
        for f in [pool.submit(worker) for _ in range(8)]:
            f.result()
    errors = [o for _, _, o, _ in results if not isinstance(o, int)]
    assert errors == []
    assert all(h == str(o) for _, _, o, h in results)  # every response names the version that served it
    versions = {o for _, _, o, _ in results}
    assert versions == {1, 2}
    # once one response came from v2, every request started afterwards is served by v2 (no flapping back)
    assert first_v2 and all(o == 2 for s, _, o, _ in results if s > first_v2[0])
    assert httpx.get(f"{server}/version").json()["swaps"] == 1
