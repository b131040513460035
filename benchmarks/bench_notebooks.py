"""Whole notebooks as users and jobs run them: tracked against untracked, end to end (issue 21).

Each notebook of the *Python Data Science Handbook*'s scikit-learn chapter (``05.02``–``05.14``;
a checkout is found as ``bench_handbook.py`` finds it) runs with ``papermill`` as a separate
process, from kernel start to the end of the kernel's exit (for tracked modes that includes
the recorder writing the last run: the kernel waits for it before exiting), in three modes:

- ``untracked``: the notebook as it is (ported to today's Matplotlib, as bench_handbook does);
- ``autotrack``: a first cell ``%load_ext mlops_nb`` + ``%mlops autotrack on``;
- ``track``: ``%%mlops track`` on every cell that fits or scores a model.

Modes alternate within each repetition (the shared machine's speed drifts), and each
notebook's figure is the median of ``--reps`` runs: wall time, and CPU time of every process
involved (papermill, the kernel, the recorder: ``RUSAGE_CHILDREN``). The chapter's figure is the
median over its notebooks of each notebook's overhead against untracked.

Run: ``python benchmarks/bench_notebooks.py [--reps 3] [--handbook DIR] [NOTEBOOK ...]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from bench_handbook import CHAPTERS, find_handbook, support_site, variant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = ["untracked", "autotrack", "track"]
TARGETS = {"wall": 5.0, "cpu": 10.0, "worst wall": 15.0}


def recorder_cpu(marker: str) -> dict[int, float]:
    """CPU seconds so far of every recorder process alive (spares included: see tracking/spare.py)
    started from this bench's kernels: ``marker`` is in their environment (other recorders on the
    machine, a test suite's, are not ours to count)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if (proc.name.isdigit() and b"mlops_nb.tracking.recorder" in (proc / "cmdline").read_bytes()
                    and marker.encode() in (proc / "environ").read_bytes()):  # fmt: skip
                fields = (proc / "stat").read_text().rpartition(")")[2].split()
                found[int(proc.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return found


def run_once(path: Path, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s of papermill and everything it started) of one papermill run.

    A recorder that outlives its kernel as a spare is not reaped by anything papermill waits for,
    so its CPU is not in ``RUSAGE_CHILDREN``: every recorder's CPU during the run is added.
    """
    recorders = recorder_cpu(env["PYTHONPATH"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "papermill", str(path), str(path.with_suffix(".out.ipynb")),
                           "--cwd", str(cwd), "-k", "python3", "--no-progress-bar"],
                          env=env, capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu += sum(seconds - recorders.get(pid, 0.0) for pid, seconds in recorder_cpu(env["PYTHONPATH"]).items())
    if done.returncode not in (0, 1):  # 1: a cell failed (offline downloads), in every mode alike
        raise SystemExit(f"papermill {path.name} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--handbook")
    parser.add_argument("notebooks", nargs="*", help="only these (file names)")
    args = parser.parse_args()
    folder = find_handbook(args.handbook)
    if folder is None:
        print("skipped: no checkout of the handbook (see bench_handbook.py)")
        return
    chosen = sorted(p for p in folder.iterdir() if CHAPTERS.match(p.name) and (not args.notebooks or p.name in args.notebooks))
    site = support_site()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(ROOT), base_env.get("PYTHONPATH")]))
    base_env["SEABORN_DATA"] = str(site / "seaborn-data")
    base_env["MPLBACKEND"] = "Agg"
    rows = []
    print(f"{len(chosen)} notebooks x {len(MODES)} modes x {args.reps} runs, papermill end to end")
    print(f"    {'notebook':<44} {'untracked':>9} {'autotrack':>16} {'track':>16}   cpu: autotrack, track")
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp_name:
        work = Path(tmp_name)
        for path in chosen:
            original = nbformat.read(path, as_version=4)
            wall = {m: [] for m in MODES}
            cpu = {m: [] for m in MODES}
            for rep in range(args.reps):
                for mode in MODES if rep % 2 == 0 else reversed(MODES):
                    cwd = work / f"{path.stem}-{mode}-{rep}"
                    shutil.copytree(folder, cwd, ignore=shutil.ignore_patterns("*.ipynb", "figures"))
                    nb_path = cwd / "notebook.ipynb"
                    nbformat.write(variant(original, mode), nb_path)
                    env = {**base_env, "MLOPS_NB_HOME": str(cwd / ".mlops")}
                    w, c = run_once(nb_path, cwd, env)
                    wall[mode].append(w)
                    cpu[mode].append(c)
                    shutil.rmtree(cwd, ignore_errors=True)
            med_w = {m: statistics.median(wall[m]) for m in MODES}
            med_c = {m: statistics.median(cpu[m]) for m in MODES}
            over = {m: 100 * (med_w[m] / med_w["untracked"] - 1) for m in MODES}
            over_c = {m: 100 * (med_c[m] / med_c["untracked"] - 1) for m in MODES}
            rows.append((path.name, over, over_c))
            print(f"    {path.name[:44]:<44} {med_w['untracked']:8.2f}s {med_w['autotrack']:7.2f}s {over['autotrack']:+6.1f}% "
                  f"{med_w['track']:7.2f}s {over['track']:+6.1f}%   {over_c['autotrack']:+6.1f}% {over_c['track']:+6.1f}%", flush=True)  # fmt: skip
    if len(rows) < 2:
        return
    for mode in ("autotrack", "track"):
        wall_med = statistics.median(r[1][mode] for r in rows)
        cpu_med = statistics.median(r[2][mode] for r in rows)
        worst = max(rows, key=lambda r: r[1][mode])
        print(f"{mode}: wall {wall_med:+.1f} % (median of {len(rows)}), CPU {cpu_med:+.1f} %, worst {worst[0]} {worst[1][mode]:+.1f} %")
        if len(rows) >= 10:
            _results.record(f"{mode} end to end over the handbook chapter: wall", wall_med, unit="%", target=TARGETS["wall"],
                            better="lower", detail=f"papermill runs, median of {args.reps} each, median of {len(rows)} notebooks", noise=0.03)  # fmt: skip
            _results.record(f"{mode} end to end over the handbook chapter: CPU", cpu_med, unit="%", target=TARGETS["cpu"],
                            better="lower", detail="papermill + kernel + recorder", noise=0.05)  # fmt: skip
            _results.record(f"{mode} end to end: worst notebook wall", worst[1][mode], unit="%", target=TARGETS["worst wall"],
                            better="lower", detail=worst[0], noise=0.05)  # fmt: skip


if __name__ == "__main__":
    main()
