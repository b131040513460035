"""Figures of a `make bench` run: each beside its anchor and target, guarded against regressions.

Every benchmark calls :func:`record` for the figures it measures; ``run_all.py`` then calls
:func:`summarize`, which prints one table, writes it into ``benchmarks/README.md`` (with the
date and the machine) and compares each figure with its best so far in ``benchmarks/best.json``:
a figure worse than its best by more than the machine's noise fails the run loudly. A better
figure becomes the new best.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "build" / "bench-results.jsonl"
BEST = HERE / "best.json"
README = HERE / "README.md"
START, END = "<!-- latest-run:start -->", "<!-- latest-run:end -->"
NOISE = 0.25  # this shared 2-core VM: the same figure moves by 10-20 % between runs


def record(figure: str, value: float, *, unit: str, target: float | None, better: str = "higher",
           detail: str = "", noise: float = NOISE) -> None:  # fmt: skip
    """Keep one figure of this run: ``value`` in ``unit`` (``x`` for a ratio to the anchor,
    ``%`` for an overhead), its ``target``, and which way is ``better``.

    ``noise`` is how far the figure may fall behind its best without failing the run: a
    fraction of the best value, or for a ``%`` overhead a fraction of the baseline the
    overhead is measured against (``0.05``: 5 percentage points)."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    value = float(value)  # numpy scalars: their comparisons give numpy bools, which json refuses
    target = None if target is None else float(target)
    met = None if target is None else (value >= target if better == "higher" else value <= target)
    row = {"figure": figure, "value": value, "unit": unit, "target": target, "better": better,
           "detail": detail, "noise": noise, "met": met}  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    shown = "n/a" if target is None else ("met" if met else "NOT MET")
    print(f"[figure] {figure}: {_fmt(value, unit)} (target {_target(row)}: {shown}) {detail}", flush=True)


def reset() -> None:
    RESULTS.unlink(missing_ok=True)


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        # two decimals below 10x, so that 1.14x is not shown as the 1.1x target it misses
        return f"{value:.2f}x" if value < 10 else f"{value:.1f}x" if value < 100 else f"{value:.0f}x"
    if unit == "%":
        return f"{value:+.1f} %"
    return f"{value:.3g} {unit}"


def _target(row: dict) -> str:
    if row["target"] is None:
        return "-"
    sign = ">=" if row["better"] == "higher" else "<="
    return f"{sign} {_fmt(row['target'], row['unit'])}"


def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    mem = ""
    try:
        kb = int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal")))
        mem = f", {kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}{load}"


def _regressed(row: dict, best: float) -> bool:
    # An overhead near 0 % has no scale of its own: its noise is a share of the baseline (100 %).
    slack = row["noise"] * (100.0 if row["unit"] == "%" else abs(best))
    return row["value"] < best - slack if row["better"] == "higher" else row["value"] > best + slack


def summarize(failed_scripts: list[str]) -> int:
    """Print the table, write it into the README, guard against regressions; the exit status."""
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()] if RESULTS.exists() else []
    best = json.loads(BEST.read_text()) if BEST.exists() else {}
    regressions = []
    lines = ["| figure | this run | target | met | best so far | detail |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        prev = best.get(row["figure"])
        if prev is not None and _regressed(row, prev["value"]):
            allowed = f"{row['noise'] * 100:.0f} points" if row["unit"] == "%" else f"{row['noise']:.0%}"
            regressions.append(f"{row['figure']}: {_fmt(row['value'], row['unit'])}, best {_fmt(prev['value'], row['unit'])} "
                               f"on {prev['date']} (noise allowed {allowed})")  # fmt: skip
        improves = prev is None or (row["value"] > prev["value"] if row["better"] == "higher" else row["value"] < prev["value"])
        if improves:
            best[row["figure"]] = {"value": row["value"], "date": datetime.date.today().isoformat()}
        met = "-" if row["met"] is None else ("yes" if row["met"] else "**no**")
        shown_best = _fmt(best[row["figure"]]["value"], row["unit"])
        detail = row["detail"].replace("|", "\\|")  # a table cell
        lines.append(f"| {row['figure']} | {_fmt(row['value'], row['unit'])} | {_target(row)} | {met} | {shown_best} | {detail} |")
    stamp = f"Run of {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} on {machine()}."
    table = "\n".join([stamp, "", *lines])
    print("\n=== make bench: every figure beside its anchor and target ===\n" + table)
    if rows:
        BEST.write_text(json.dumps(best, indent=1, sort_keys=True) + "\n")
        text = README.read_text()
        block = f"{START}\n{table}\n{END}"
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S) if START in text else (
            text.rstrip() + "\n\n## Latest `make bench`\n\n" + block + "\n")  # fmt: skip
        README.write_text(text)
    status = 0
    if regressions:
        print("\n!!! REGRESSION: a figure fell below its best by more than the machine's noise:")
        for r in regressions:
            print("!!!   " + r)
        status = 1
    if failed_scripts:
        print(f"\nbenchmarks failed: {', '.join(failed_scripts)}")
        status = 1
    return status
