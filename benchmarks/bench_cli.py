"""CLI start-up as a user meets it at the shell prompt, side by side with MLflow's and papermill's.

Each command runs as its own process, and we time it from start to exit (wall clock):

- ``mlops-nb --help``, ``mlops-nb summary`` and ``mlops-nb runs``, on a registry (a temporary
  ``MLOPS_NB_HOME``) that already holds 50 runs tracked with ``mlops_nb.track``;
- ``mlflow --help`` (MLflow 3 in ``build/bench-mlflow-venv``) and ``papermill --help`` (in our venv).

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
TARGET_S = 0.3  # each of our commands
TARGET_RATIO = 10  # mlflow --help / mlops-nb --help


def fill_registry(home: Path) -> None:
    """``RUNS`` runs in the registry under ``home``, tracked as a user would track them."""
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
    clear_cache()


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def main() -> None:
    ours = BIN / "mlops-nb"
    if not ours.exists():
        raise SystemExit(f"no mlops-nb entry point in {BIN}: run this with the project's venv (make bench)")
    mlflow = anchor_python("mlflow", ["mlflow>=3"]).parent / "mlflow"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".mlops"
        fill_registry(home)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(MLOPS_NB_HOME=str(home), PYTHONPYCACHEPREFIX=str(ROOT / "build" / "bench-cli-pycache"))
        commands = {
            "mlops-nb --help": [str(ours), "--help"],
            "mlops-nb summary": [str(ours), "summary"],
            "mlops-nb runs": [str(ours), "runs"],
            "mlflow --help": [str(mlflow), "--help"],
            "papermill --help": [str(BIN / "papermill"), "--help"],
            # The floor of any command that reads the registry through SQLAlchemy: its import alone.
            "import sqlalchemy": [str(BIN / "python"), "-c", "import sqlalchemy"],
        }
        for name, cmd in commands.items():  # bytecode and page cache, untimed
            _, out = timed(cmd, env, tmp)
            if name == "mlops-nb runs":
                missing = [i for i in range(RUNS) if f"run-{i}" not in out.split()]
                if missing:
                    raise SystemExit(f"mlops-nb runs did not list {len(missing)} of the {RUNS} runs:\n{out}")
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for r in range(ROUNDS):
            for name in names[r % len(names):] + names[: r % len(names)]:
                times[name].append(timed(commands[name], env, tmp)[0])
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"start-up from the shell prompt, wall clock, median of {ROUNDS} (alternating), registry of {RUNS} runs:")
    for name, t in times.items():
        print(f"    {name:<18} {median[name]:6.3f} s   (min {min(t):.3f}, max {max(t):.3f})")
    ratio = median["mlflow --help"] / median["mlops-nb --help"]
    print(f"    mlflow --help / mlops-nb --help = {ratio:.1f}x; "
          f"papermill --help / mlops-nb --help = {median['papermill --help'] / median['mlops-nb --help']:.1f}x")
    for name in ("mlops-nb --help", "mlops-nb summary", "mlops-nb runs"):
        what = "" if name.endswith("--help") else f" ({RUNS} runs)"
        floor = "" if name.endswith("--help") else f"; `python -c 'import sqlalchemy'` alone {median['import sqlalchemy']:.3f} s"
        _results.record(f"{name} start-up{what}", median[name], unit="s", target=TARGET_S, better="lower",
                        detail=f"median of {ROUNDS}, min {min(times[name]):.3f} s{floor}")
    _results.record("mlops-nb --help vs mlflow --help", ratio, unit="x", target=TARGET_RATIO,
                    detail=f"mlflow {median['mlflow --help']:.2f} s, ours {median['mlops-nb --help']:.3f} s, "
                           f"papermill {median['papermill --help']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
