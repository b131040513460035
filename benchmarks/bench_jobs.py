"""Notebook jobs, side by side with bare papermill (the execution anchor).

``papermill NB OUT -p C 0.5`` against ``mlops-nb run NB -p C 0.5``, which adds a separate
process, the job-run record, the executed notebook as an artifact and the link to every
tracked run.  Same notebook (the quickstart), same kernel, alternating, best of N.

A third column is papermill started the way ``mlops-nb run`` starts it (without the 1 s
``rfc3987_syntax`` import that validates nothing in a notebook, see ``mlops_nb.lean_imports``):
the difference between it and ``mlops-nb run`` is what recording a job costs.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402

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
        lean = [sys.executable, "-c", "from mlops_nb.lean_imports import papermill_main; papermill_main()", *bare[1:]]
        ours = [str(BIN / "mlops-nb"), "run", str(NOTEBOOK), "-p", "C", "0.5"]
        times: dict[str, list[float]] = {"papermill": [], "papermill, lean": [], "mlops-nb run": []}
        for _ in range(REPEATS):  # alternate, so machine load hits all alike
            times["papermill"].append(timed(bare, env, tmp))
            times["papermill, lean"].append(timed(lean, env, tmp))
            times["mlops-nb run"].append(timed(ours, env, tmp))
        best = {k: min(v) for k, v in times.items()}
        print(f"quickstart notebook ({NOTEBOOK.name}), best of {REPEATS}, wall clock incl. kernel start:")
        for name, value in best.items():
            print(f"    {name:<15} {value:6.2f} s")
        overhead = best["mlops-nb run"] - best["papermill"]
        print(f"    mlops-nb run vs papermill: {overhead:+.2f} s ({best['mlops-nb run'] / best['papermill']:.2f}x)")
        record = best["mlops-nb run"] - best["papermill, lean"]
        print(f"    what recording costs (vs papermill started as we start it): {record:+.2f} s "
              f"({best['mlops-nb run'] / best['papermill, lean']:.2f}x)")
        _results.record("mlops-nb run vs bare papermill (quickstart)", best["mlops-nb run"] / best["papermill"], unit="x",
                        target=1.10, better="lower", detail=f"mlops-nb run {best['mlops-nb run']:.2f} s, "
                        f"papermill {best['papermill']:.2f} s, best of {REPEATS}")  # fmt: skip
        _results.record("mlops-nb run vs papermill started lean (quickstart)", best["mlops-nb run"] / best["papermill, lean"],
                        unit="x", target=None, better="lower", detail=f"what recording a job costs: {record:+.2f} s "
                        f"over {best['papermill, lean']:.2f} s")  # fmt: skip
        print(json.dumps({"papermill_s": best["papermill"], "papermill_lean_s": best["papermill, lean"],
                          "mlops_nb_run_s": best["mlops-nb run"], "ratio": best["mlops-nb run"] / best["papermill"],
                          "ratio_lean": best["mlops-nb run"] / best["papermill, lean"]}))


if __name__ == "__main__":
    main()
