"""Data drift, side by side with Evidently's ``DataDriftPreset`` (the drift anchor).

1. Same frames, both tools: a small pair (800 rows: K-S / chi-square / Z-test
   branch), a large pair (200,000 rows x 25 columns: Wasserstein /
   Jensen-Shannon branch) and a big pair (1,000,000 rows x 25 columns).
   Evidently runs in its own venv (it needs pandas<3) on frames written to
   parquet; ours runs in-process. Prints the time ratio and, for every column,
   both tools' test, value (p-value or distance) and decision, and whether they
   agree.
2. Ours alone on the big pair (20 numerical, 5 categorical): drift from raw
   data, building the reference profile, and drift from that profile.

If Evidently's venv cannot be created (offline machine), ours runs alone and
no side-by-side figure is recorded.

Run: ``python benchmarks/bench_drift.py [--rows N] [--big-rows N] [--skip-evidently]``
(creates build/bench-evidently-venv on first use).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results  # noqa: E402
from _anchor_env import ROOT, anchor_python, ensure_ours, run_json  # noqa: E402

ensure_ours()

EVIDENTLY_REQUIREMENTS = ["evidently", "pandas<3", "pyarrow"]
# Targets of the time ratio Evidently / ours, by rows (issue 21); other sizes have none.
TARGETS = {200_000: 50, 1_000_000: 30}

EVIDENTLY_RUN = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
num = json.loads(sys.argv[3]); cat = json.loads(sys.argv[4])
t0 = time.perf_counter()
dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=dd),
                                         Dataset.from_pandas(ref, data_definition=dd))
seconds = time.perf_counter() - t0
out = {}
for m in snap.dict()["metrics"]:
    cfg = m["config"]
    if cfg.get("type", "").endswith("ValueDrift"):
        out[cfg["column"]] = {"method": cfg["method"], "value": m["value"], "threshold": cfg["threshold"]}
import evidently
print(json.dumps({"seconds": seconds, "columns": out, "version": evidently.__version__}))
"""

# Evidently display name -> (our test name, drift rule)
EVIDENTLY_TESTS = {
    "K-S p_value": ("ks", "le"),
    "chi-square p_value": ("chisquare", "lt"),
    "Z-test p_value": ("ztest", "lt"),
    "Wasserstein distance (normed)": ("wasserstein", "ge"),
    "Jensen-Shannon distance": ("jensenshannon", "ge"),
    "PSI": ("psi", "ge"),
    "Hellinger distance": ("hellinger", "ge"),
}


def make_frames(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Reference and current frames, 20 numerical + 5 categorical columns, some drifted."""
    rng = np.random.default_rng(seed)
    frames = []
    for side in (0, 1):
        d: dict[str, object] = {}
        for i in range(16):
            kind = i % 4
            shift = 0.2 * side if i < 4 else 0.0  # num0..num3 drift in location
            scale = 1.3 if (side and 4 <= i < 6) else 1.0  # num4, num5 drift in spread
            if kind == 0:
                d[f"num{i}"] = rng.normal(shift, scale, n)
            elif kind == 1:
                d[f"num{i}"] = rng.lognormal(shift, 0.5 * scale, n)
            elif kind == 2:
                d[f"num{i}"] = rng.uniform(shift, 1 + shift, n) * scale
            else:
                d[f"num{i}"] = rng.exponential(scale, n) + shift
        p16 = [0.4, 0.3, 0.2, 0.1] if not side else [0.3, 0.3, 0.25, 0.15]
        d["num16"] = rng.choice([0.0, 1.0, 2.0, 3.0], n, p=p16)  # 4 values: chi-square / JS
        d["num17"] = rng.choice([0.0, 1.0, 2.0, 3.0], n)
        for name in ("num18", "num19"):  # missing values and infinities
            x = rng.normal(0.1 * side if name == "num18" else 0.0, 1, n)
            x[rng.random(n) < 0.05 + 0.05 * side] = np.nan
            x[rng.random(n) < 0.001] = np.inf
            d[name] = x
        d["cat0"] = rng.choice([f"c{k}" for k in range(8)], n)
        d["cat1"] = rng.choice(list("abcde"), n, p=[0.3, 0.25, 0.2, 0.15, 0.1] if not side else [0.2] * 5)
        d["cat2"] = rng.choice(["x", "y", "z", "new"] if side else ["x", "y", "z"], n)  # unseen category
        d["cat3"] = rng.choice(["yes", "no"], n, p=[0.5, 0.5] if not side else [0.45, 0.55])  # 2 values
        zipf = np.minimum(rng.zipf(1.6, n), 50)
        d["cat4"] = pd.Series(zipf).map(lambda k: f"k{k}").to_numpy()
        frames.append(pd.DataFrame(d))
    num = [f"num{i}" for i in range(20)]
    cat = [f"cat{j}" for j in range(5)]
    return frames[0], frames[1], num, cat


def agree_values(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-6 * max(1.0, abs(b)) or (a < 1e-12 and b < 1e-12)


def rows_text(n: int) -> str:
    """800, 200k, 1M: the size in a figure's name."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return f"{n:,}"


def compare(label: str, n: int, seed: int, python: Path | None, workdir: Path, frames=None) -> dict:
    """Ours and Evidently on the pair ``make_frames(n, seed)`` (``frames``: that pair, already made)."""
    from mlops_nb.drift import drift

    ref, cur, num, cat = frames if frames is not None else make_frames(n, seed)
    t0 = time.perf_counter()
    ours = drift(ref, cur)
    ours_s = time.perf_counter() - t0
    result = {"label": label, "rows": n, "columns": ref.shape[1], "ours_seconds": ours_s, "ours_report": ours.summary()}
    print(f"\n--- {label}: {n:,} rows x {ref.shape[1]} columns ---")
    print(f"ours: {ours_s:.3f} s ({ours.summary()})")
    if python is None:
        return result
    rp, cp = workdir / f"{label}_ref.parquet", workdir / f"{label}_cur.parquet"
    ref.to_parquet(rp)
    cur.to_parquet(cp)
    ev = run_json(python, EVIDENTLY_RUN, str(rp), str(cp), json.dumps(num), json.dumps(cat))
    ratio = ev["seconds"] / ours_s
    print(f"evidently {ev['version']}: {ev['seconds']:.3f} s  ->  ours is {ratio:.1f}x faster")
    rows, n_test, n_decision, n_value = [], 0, 0, 0
    print(f"{'column':<7} {'ours test':<13} {'ours value':>12} {'drift':>5} | {'evidently':<13} {'value':>12} "
          f"{'drift':>5} | agree")  # fmt: skip
    for col in num + cat:
        mine = ours[col]
        e = ev["columns"][col]
        e_test, rule = EVIDENTLY_TESTS.get(e["method"], (e["method"], "ge"))
        e_val = e["value"]
        e_drift = (e_val <= e["threshold"]) if rule == "le" else (e_val < e["threshold"]) if rule == "lt" else (
            e_val >= e["threshold"])  # fmt: skip
        same_test = mine["test"] == e_test
        same_decision = bool(mine["test_drifted"]) == bool(e_drift)
        same_value = agree_values(mine["score"], e_val)
        n_test += same_test
        n_decision += same_decision
        n_value += same_value
        flags = ("test " if same_test else "TEST≠ ") + ("decision " if same_decision else "DECISION≠ ") + (
            "value" if same_value else "VALUE≠")  # fmt: skip
        print(f"{col:<7} {mine['test']:<13} {mine['score']:>12.5g} {str(mine['test_drifted']):>5} | "
              f"{e_test:<13} {e_val:>12.5g} {str(bool(e_drift)):>5} | {flags}")  # fmt: skip
        rows.append({"column": col, "ours": [mine["test"], mine["score"], mine["test_drifted"]],
                     "evidently": [e_test, e_val, bool(e_drift)], "note": mine["note"]})  # fmt: skip
    k = len(num + cat)
    print(f"agreement: test {n_test}/{k}, decision {n_decision}/{k}, value {n_value}/{k}")
    for r in rows:
        if not agree_values(r["ours"][1], r["evidently"][1]):
            print(f"  {r['column']}: ours {r['ours'][1]:.6g} vs evidently {r['evidently'][1]:.6g} ({r['note']})")
    _results.record(f"drift {rows_text(n)} x {ref.shape[1]} vs Evidently", ratio, unit="x", target=TARGETS.get(n),
                    detail=f"Evidently {ev['version']} {ev['seconds']:.2f} s, ours {ours_s:.3f} s; "
                           f"same decision {n_decision}/{k}")  # fmt: skip
    result.update(evidently_seconds=ev["seconds"], evidently_version=ev["version"], speedup=ratio,
                  agree_test=n_test, agree_decision=n_decision, agree_value=n_value, n_columns=k,
                  per_column=rows)  # fmt: skip
    return result


def ours_at_scale(n: int, seed: int, frames=None) -> dict:
    from mlops_nb.drift import drift
    from mlops_nb.profiling.profile import build_profile

    ref, cur, _, _ = frames if frames is not None else make_frames(n, seed)
    print(f"\n--- ours alone: {n:,} rows x {ref.shape[1]} columns (reference and current each) ---")
    t0 = time.perf_counter()
    rep = drift(ref, cur)
    raw_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    prof = build_profile(ref)
    prof_s = time.perf_counter() - t0
    size_kb = len(json.dumps(prof)) / 1024
    t0 = time.perf_counter()
    rep_p = drift(prof, cur)
    from_prof_s = time.perf_counter() - t0
    same = sum(a["test_drifted"] == b["test_drifted"] for a, b in zip(rep.rows, rep_p.rows))
    print(f"drift from raw reference:   {raw_s:.2f} s  ({rep.summary()})")
    print(f"build_profile(reference):   {prof_s:.2f} s  ({size_kb:.0f} KB JSON, {size_kb / ref.shape[1]:.1f} KB/column)")
    print(f"drift from the profile:     {from_prof_s:.2f} s  (decisions equal to raw: {same}/{len(rep.rows)})")
    return {"rows": n, "raw_seconds": raw_s, "profile_seconds": prof_s, "profile_kb": size_kb,
            "from_profile_seconds": from_prof_s, "profile_decisions_equal": same}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the large side-by-side pair")
    parser.add_argument("--small-rows", type=int, default=800, help="rows of the small pair (<= 1000 branch)")
    parser.add_argument("--big-rows", type=int, default=1_000_000,
                        help="rows of the big pair, side by side and then ours alone (0 to skip)")
    parser.add_argument("--skip-evidently", action="store_true", help="time ours only")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    workdir = ROOT / "build" / "bench-drift"
    workdir.mkdir(parents=True, exist_ok=True)
    python = None
    if not args.skip_evidently:
        try:
            python = anchor_python("evidently", EVIDENTLY_REQUIREMENTS)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"NOTE: Evidently's venv could not be created ({exc}); timing ours alone, "
                  "no side-by-side figures recorded", flush=True)  # fmt: skip
    results = {
        "small": compare("small", args.small_rows, args.seed, python, workdir),
        "large": compare("large", args.rows, args.seed, python, workdir),
    }
    if args.big_rows:
        frames = make_frames(args.big_rows, args.seed)  # the same pair for both parts
        results["big"] = compare("big", args.big_rows, args.seed, python, workdir, frames)
        results["scale"] = ours_at_scale(args.big_rows, args.seed, frames)
    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults written to {workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
