"""CLI start-up as a user meets it at the shell prompt, side by side with MLflow's and papermill's.

Each command runs as its own process, and we time it from start to exit (wall clock):

- ``mlops-nb --help``, ``mlops-nb summary`` and ``mlops-nb runs``, on a registry (a temporary
  ``MLOPS_NB_HOME``) that already holds 50 runs tracked with ``mlops_nb.track``, cold: no warm
  server (``MLOPS_NB_CLI_SPARE_S=0``), every import paid by the command;
- ``mlops-nb summary`` and ``mlops-nb runs`` warm: what a user meets from the second read-only
  command on, a warm server (:mod:`mlops_nb.cli_server`, started by one untimed command) waiting
  in a runtime folder of the bench's own;
- ``mlflow --help`` (MLflow 3 in ``build/bench-mlflow-venv``) and ``papermill --help`` (in our venv);
- then every other read-only command (``tests/test_cli.py``'s list: ``show``, ``lineage``, ``models
  list``/``versions``/``show``/``requests``, ``audit list``/``verify``/``head``, ``data show``, ``jobs
  list``/``show``, ``alerts``, ``status``) cold, in rounds of their own, on the same registry, which
  also holds a registered model with an alias, a pending promotion, a job run and an alert.

Every command first runs once untimed, which writes its bytecode and loads its files into the page
cache.  Then come 7 rounds.  Each round runs every command once, and the starting command moves
along from one round to the next, so the shared machine's load falls on all of them alike.  We
report the median.  Bytecode is written to ``build/bench-cli-pycache`` (``PYTHONPYCACHEPREFIX``)
for every tool alike, with ``PYTHONDONTWRITEBYTECODE`` unset: a user's installed packages have
their bytecode, whatever this checkout's environment says.

Run: ``python benchmarks/bench_cli.py`` (creates build/bench-mlflow-venv on first use).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from _anchor_env import ROOT, anchor_python, ensure_ours  # noqa: E402

ensure_ours()

BIN = Path(sys.executable).parent  # the venv `make bench` runs in: /work/main/.venv/bin
RUNS = 50
ROUNDS = 7
OTHER_ROUNDS = 5
TARGET_S = 0.3  # each of our commands
TARGET_RATIO = 10  # mlflow --help / mlops-nb --help


def fill_registry(home: Path) -> str:
    """``RUNS`` runs in the registry under ``home``, tracked as a user would track them, then a run
    with an input and a model, registered, a promotion request, a job run and an alert: the run's id."""
    os.environ["MLOPS_NB_HOME"] = str(home)
    import mlops_nb
    from mlops_nb import config
    from mlops_nb.store import clear_cache

    config.reset()
    clear_cache()
    for i in range(RUNS):
        with mlops_nb.track(name=f"run-{i}") as run:
            run.log_params({"C": [0.1, 1, 10][i % 3], "solver": "lbfgs", "max_iter": 100 + i})
            run.log_metric("accuracy", 0.8 + i / 1000)
            run.log_metric("loss", 0.5 - i / 1000)
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.arange(40.0).reshape(20, 2)
    with mlops_nb.track(name="listed", inputs={"X": X}) as run:
        run.log_metric("accuracy", 0.93)
        digest = run.log_model(LogisticRegression().fit(X, X[:, 0] > 20), "clf")
    mlops_nb.register(digest, name="iris", alias="staging", reason="first")
    (home / "policy.toml").write_text('[aliases.production]\napprovers = ["li"]\n')
    os.environ["MLOPS_NB_USER"] = "maria"
    mlops_nb.promote("iris", 1, "production")
    from mlops_nb.store import get_store

    store = get_store()
    store.start_job_run("0" * 32, notebook_path="/nb/train.ipynb", notebook_hash="0" * 64, parameters={"C": 0.5},
                        kernel="python3")  # fmt: skip
    store.finish_job_run("0" * 32, status="finished", duration=1.25, run_ids=[run.id])
    store.add_alert({"monitor": "iris-watch", "severity": "warning", "kind": "drift", "model": "iris", "version": 1,
                     "decision": "retrain", "message": "40% of the columns drifted"})  # fmt: skip
    clear_cache()
    return run.id[:8]


def other_read_only(run: str) -> dict[str, list[str]]:
    """Every read-only command but the three timed above, as tests/test_cli.py lists them."""
    commands = [["show", run], ["status"], ["lineage", f"run:{run}"], ["models", "list"], ["models", "versions", "iris"],
                ["models", "show", "iris@staging"], ["models", "requests", "--all"], ["audit", "list"],
                ["audit", "verify"], ["audit", "head"], ["data", "show", f"run:{run}/X"], ["jobs", "list"],
                ["jobs", "show", "0" * 8], ["alerts"]]  # fmt: skip
    return {"mlops-nb " + " ".join(c): c for c in commands}


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def start_server(ours: Path, env: dict[str, str], cwd: str) -> int:
    """Leave a warm server behind (one untimed read-only command) and wait until it listens: its pid."""
    folder = Path(env["XDG_RUNTIME_DIR"]) / f"mlops_nb-cli-{os.getuid()}"
    timed([str(ours), "summary"], env, cwd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sockets = list(folder.glob("*.sock")) if folder.exists() else []
        if sockets:
            return int(sockets[0].stem.rpartition("-")[2])
        time.sleep(0.05)
    raise SystemExit(f"no warm server came up in {folder} within 60 s")


def main() -> None:
    ours = BIN / "mlops-nb"
    if not ours.exists():
        raise SystemExit(f"no mlops-nb entry point in {BIN}: run this with the project's venv (make bench)")
    mlflow = anchor_python("mlflow", ["mlflow>=3"]).parent / "mlflow"
    runtime = tempfile.mkdtemp(prefix="bench-rt-", dir="/tmp")  # short: socket paths; never a user's server
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".mlops"
        listed = fill_registry(home)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(MLOPS_NB_HOME=str(home), PYTHONPYCACHEPREFIX=str(ROOT / "build" / "bench-cli-pycache"),
                   MLOPS_NB_CLI_SPARE_S="0", XDG_RUNTIME_DIR=runtime)  # fmt: skip
        warm_env = {**env, "MLOPS_NB_CLI_SPARE_S": "600", "MLOPS_NB_CLI_TRACE": str(Path(tmp) / "served")}
        commands = {
            "mlops-nb --help": [str(ours), "--help"],
            "mlops-nb summary": [str(ours), "summary"],
            "mlops-nb runs": [str(ours), "runs"],
            "mlops-nb summary (warm)": [str(ours), "summary"],
            "mlops-nb runs (warm)": [str(ours), "runs"],
            "mlflow --help": [str(mlflow), "--help"],
            "papermill --help": [str(BIN / "papermill"), "--help"],
            # The floor of any command that reads the registry through SQLAlchemy: its import alone.
            "import sqlalchemy": [str(BIN / "python"), "-c", "import sqlalchemy"],
        }
        envs = {name: warm_env if name.endswith("(warm)") else env for name in commands}
        try:
            server = start_server(ours, warm_env, tmp)
            outputs = {}
            for name, cmd in commands.items():  # bytecode and page cache, untimed
                _, outputs[name] = timed(cmd, envs[name], tmp)
                if name == "mlops-nb runs":
                    missing = [i for i in range(RUNS) if f"run-{i}" not in outputs[name].split()]
                    if missing:
                        raise SystemExit(f"mlops-nb runs did not list {len(missing)} of the {RUNS} runs:\n{outputs[name]}")
            for name in ("mlops-nb summary", "mlops-nb runs"):
                if outputs[f"{name} (warm)"] != outputs[name]:
                    raise SystemExit(f"{name} printed otherwise warm than cold")
            served = (Path(tmp) / "served").read_text().splitlines()
            times: dict[str, list[float]] = {name: [] for name in commands}
            names = list(commands)
            for r in range(ROUNDS):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    times[name].append(timed(commands[name], envs[name], tmp)[0])
            # Every warm command of the rounds was the server's (none ran cold after it declined).
            served = (Path(tmp) / "served").read_text().splitlines()[len(served):]
            if len(served) != 2 * ROUNDS or {line.split()[0] for line in served} != {str(server)}:
                raise SystemExit(f"the warm rows were not all served by the server {server}: {served}")
            others = {name: [str(ours), *args] for name, args in other_read_only(listed).items()}
            for name, cmd in others.items():
                timed(cmd, env, tmp)
            other_times: dict[str, list[float]] = {name: [] for name in others}
            names = list(others)
            for r in range(OTHER_ROUNDS):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    other_times[name].append(timed(others[name], env, tmp)[0])
        finally:
            if server is not None:
                try:
                    os.kill(server, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            shutil.rmtree(runtime, ignore_errors=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"start-up from the shell prompt, wall clock, median of {ROUNDS} (alternating), registry of {RUNS} runs:")
    for name, t in times.items():
        print(f"    {name:<25} {median[name]:6.3f} s   (min {min(t):.3f}, max {max(t):.3f})")
    other_median = {name: statistics.median(t) for name, t in other_times.items()}
    print(f"every other read-only command, cold, median of {OTHER_ROUNDS} (alternating):")
    for name, t in other_times.items():
        print(f"    {name:<40} {other_median[name]:6.3f} s   (min {min(t):.3f}, max {max(t):.3f})")
    ratio = median["mlflow --help"] / median["mlops-nb --help"]
    print(f"    mlflow --help / mlops-nb --help = {ratio:.1f}x; "
          f"papermill --help / mlops-nb --help = {median['papermill --help'] / median['mlops-nb --help']:.1f}x")
    for name in ("mlops-nb --help", "mlops-nb summary", "mlops-nb runs"):
        what = "" if name.endswith("--help") else f" ({RUNS} runs)"
        floor = "" if name.endswith("--help") else f"; `python -c 'import sqlalchemy'` alone {median['import sqlalchemy']:.3f} s"
        cold = "" if name.endswith("--help") else ", cold: no warm server"
        _results.record(f"{name} start-up{what}", median[name], unit="s", target=TARGET_S, better="lower",
                        detail=f"median of {ROUNDS}, min {min(times[name]):.3f} s{cold}{floor}")
    for name in ("mlops-nb summary", "mlops-nb runs"):
        # What a user meets from the second read-only command on: the first leaves the server behind.
        _results.record(f"{name} start-up, warm server ({RUNS} runs)", median[f"{name} (warm)"], unit="s",
                        target=TARGET_S, better="lower",
                        detail=f"median of {ROUNDS}, min {min(times[f'{name} (warm)']):.3f} s; "
                               f"cold {median[name]:.3f} s")  # fmt: skip
    slowest = max(other_median, key=other_median.get)
    _results.record("slowest other read-only command, cold", other_median[slowest], unit="s", target=TARGET_S,
                    better="lower", detail=f"{slowest}, median of {OTHER_ROUNDS}; {len(other_median)} commands "
                                           f"from {min(other_median.values()):.3f} s")  # fmt: skip
    _results.record("mlops-nb --help vs mlflow --help", ratio, unit="x", target=TARGET_RATIO,
                    detail=f"mlflow {median['mlflow --help']:.2f} s, ours {median['mlops-nb --help']:.3f} s, "
                           f"papermill {median['papermill --help']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
