"""Notebook jobs, side by side with bare papermill (the execution anchor).

``papermill NB OUT -p C 0.5`` against ``mlops-nb run NB -p C 0.5``, which adds a separate
process, the job-run record, the executed notebook as an artifact and the link to every
tracked run.  Same notebook (the quickstart), same kernel, alternating, best of N.

Run: ``python benchmarks/bench_jobs.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
BIN = Path(sys.executable).parent
REPEATS = 3


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MLOPS_NB_HOME=str(Path(tmp) / ".mlops"))
        bare = [str(BIN / "papermill"), str(NOTEBOOK), str(Path(tmp) / "out.ipynb"), "-p", "C", "0.5", "--cwd", tmp]
        ours = [str(BIN / "mlops-nb"), "run", str(NOTEBOOK), "-p", "C", "0.5"]
        times: dict[str, list[float]] = {"papermill": [], "mlops-nb run": []}
        for _ in range(REPEATS):  # alternate, so machine load hits both alike
            times["papermill"].append(timed(bare, env, tmp))
            times["mlops-nb run"].append(timed(ours, env, tmp))
        best = {k: min(v) for k, v in times.items()}
        print(f"quickstart notebook ({NOTEBOOK.name}), best of {REPEATS}, wall clock incl. kernel start:")
        for name, value in best.items():
            print(f"    {name:<13} {value:6.2f} s")
        overhead = best["mlops-nb run"] - best["papermill"]
        print(f"    overhead of a recorded job: {overhead:+.2f} s ({best['mlops-nb run'] / best['papermill']:.2f}x)")
        print(json.dumps({"papermill_s": best["papermill"], "mlops_nb_run_s": best["mlops-nb run"],
                          "ratio": best["mlops-nb run"] / best["papermill"]}))


if __name__ == "__main__":
    main()
