"""``mlops-nb serve`` behind bearer tokens, TLS and limits: a real uvicorn process on 127.0.0.1 over HTTPS,
a bounded mixed load of good, unauthenticated, oversized and malformed requests, and the callers' runs."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from scoring_support import train_churn

from mlops_nb.monitoring.datasets import FEATURES, churn_frame

pytest.importorskip("uvicorn")

MAX_REQUESTS = 700  # bounded in count…
DEADLINE = 90.0  # …and in time
TOKENS = {"alice": "alice-" + "a" * 30, "bob": "bob-" + "b" * 30}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops_nb.cli", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def secured_server(store, kernel_env, tmp_path, tls):
    """``mlops-nb serve`` with two tokens, TLS, 20 kB and 50 rows per request; yields (url, ssl context, process)."""
    train_churn(store)
    tokens = tmp_path / "tokens"
    tokens.write_text("# name:token\n" + "".join(f"{n}:{t}\n" for n, t in TOKENS.items()))
    port = _free_port()
    cert, key = tls
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nb.cli", "serve", "churn@production", "--port", str(port),
         "--token-file", str(tokens), "--certfile", str(cert), "--keyfile", str(key),
         "--max-bytes", "20000", "--max-rows", "50", "--record-every", "3600"],
        env=kernel_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url, context = f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(cert))
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/health", verify=context, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer /health")
        yield url, context, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tokens_limits_and_callers_under_a_bounded_mixed_load(secured_server, store):
    url, context, proc = secured_server
    small = {"dataframe_records": churn_frame(5, seed=1)[FEATURES].to_dict(orient="records")}
    many_rows = {"dataframe_records": churn_frame(60, seed=2)[FEATURES].to_dict(orient="records")}
    huge = {"dataframe_records": churn_frame(400, seed=3)[FEATURES].to_dict(orient="records")}
    assert len(httpx.Request("POST", "/", json=many_rows).content) < 20000 < len(httpx.Request("POST", "/", json=huge).content)
    bearer = {name: {"authorization": f"Bearer {token}"} for name, token in TOKENS.items()}
    cases = [  # (what, kwargs, expected status, expected error code)
        ("alice", {"json": small, "headers": bearer["alice"]}, 200, None),
        ("bob", {"json": small, "headers": bearer["bob"]}, 200, None),
        ("no token", {"json": small}, 401, "UNAUTHENTICATED"),
        ("wrong token", {"json": small, "headers": {"authorization": "Bearer " + "x" * 36}}, 401, "UNAUTHENTICATED"),
        ("basic auth", {"json": small, "auth": ("alice", TOKENS["alice"])}, 401, "UNAUTHENTICATED"),
        ("oversized", {"json": huge, "headers": bearer["bob"]}, 413, "REQUEST_TOO_LARGE"),
        ("too many rows", {"json": many_rows, "headers": bearer["alice"]}, 413, "REQUEST_TOO_LARGE"),
        ("malformed", {"content": b"{not json", "headers": {**bearer["alice"], "content-type": "application/json"}}, 400, "MALFORMED_REQUEST"),
        ("wrong shape", {"json": {"rows": []}, "headers": bearer["bob"]}, 400, "BAD_REQUEST"),
    ]
    outcomes: list[tuple[str, int, dict]] = []
    lock = threading.Lock()
    t_end = time.monotonic() + DEADLINE

    def worker(offset: int) -> None:
        with httpx.Client(verify=context, timeout=30) as client:
            i = offset
            while time.monotonic() < t_end:
                with lock:
                    if len(outcomes) >= MAX_REQUESTS:
                        return
                what, kwargs, _, _ = cases[i % len(cases)]
                r = client.post(f"{url}/invocations", **kwargs)
                with lock:
                    outcomes.append((what, r.status_code, r.json()))  # every answer is JSON, never a traceback
                i += 1

    with ThreadPoolExecutor(max_workers=6) as pool:
        for f in [pool.submit(worker, k) for k in range(6)]:
            f.result()
    assert len(outcomes) >= len(cases) * 6
    expected = {what: (status, code) for what, _, status, code in cases}
    wrong = [(w, s, b) for w, s, b in outcomes if s != expected[w][0] or (expected[w][1] and b.get("error_code") != expected[w][1])]
    assert wrong == []
    served = {name: sum(1 for w, s, _ in outcomes if w == name) for name in TOKENS}
    assert all(len(b["predictions"]) == 5 for w, s, b in outcomes if s == 200)
    assert httpx.get(f"{url}/version", verify=context).status_code == 401  # only /health and /ping are open
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):  # plain HTTP is not served
        httpx.get(url.replace("https", "http") + "/health", timeout=5)

    proc.send_signal(signal.SIGTERM)  # a graceful stop records what the callers did
    assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    runs = [r for r in store.list_runs(name="serve-churn")]
    by_caller = {r["tags"]["caller"]: r for r in runs}
    assert set(by_caller) == {"alice", "bob"}
    for name, count in served.items():
        assert by_caller[name]["metrics"]["requests"] == count and by_caller[name]["metrics"]["rows"] == 5 * count
        assert by_caller[name]["tags"]["kind"] == "scoring" and by_caller[name]["tags"]["model_version"] == "1"


def test_unsafe_or_incomplete_settings_are_refused_in_one_line(store, kernel_env, tmp_path):
    env = {k: v for k, v in kernel_env.items() if k != "MLOPS_NB_SERVE_TOKEN"}
    for args, said in [
        ((), "needs a bearer token"),
        (("--host", "0.0.0.0", "--no-auth"), "only allowed on a loopback address"),
        (("--no-auth", "--certfile", str(tmp_path / "c.pem")), "TLS needs both --certfile and --keyfile"),
    ]:
        done = _cli(env, "serve", "churn@production", *args)
        assert done.returncode == 1 and said in done.stderr and "Traceback" not in done.stderr
    short = tmp_path / "short"
    short.write_text("eve:abc\n")
    done = _cli(env, "serve", "churn@production", "--token-file", str(short))
    assert done.returncode == 1 and "shorter than 16 characters" in done.stderr
    done = _cli({**env, "MLOPS_NB_SERVE_TOKEN": "no-colon-token-but-long-enough"}, "serve", "nosuch@production")
    assert done.returncode == 1 and "nosuch" in done.stderr  # the token was accepted; the model is what is missing
