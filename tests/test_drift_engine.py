"""drift(): edge cases with defined results, column selection, options, real data splits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance
from sklearn.datasets import load_breast_cancer, load_digits

from mlops_nb.drift import DriftReport, drift
from mlops_nb.errors import DriftError, MlopsError

@pytest.fixture
def rng():
    return np.random.default_rng(3)


def assert_well_formed(rep: DriftReport):
    for r in rep.rows:
        assert isinstance(r["drifted"], bool), r
        for key in ("statistic", "p_value", "distance", "score"):
            assert r[key] is None or np.isfinite(r[key]), (key, r)
    json.dumps(rep.to_dict(), allow_nan=False)
    assert "<table" in rep._repr_html_()


# ----------------------------------------------------------------- edge cases


def test_missing_and_inf_are_excluded_and_reported(rng):
    ref = pd.DataFrame({"x": np.r_[rng.normal(size=900), [np.nan] * 100]})
    cur_vals = rng.normal(size=1000)
    cur_vals[:300] = np.nan
    cur_vals[300:310] = np.inf
    cur_vals[310:320] = -np.inf
    cur = pd.DataFrame({"x": cur_vals})
    row = drift(ref, cur)["x"]
    assert row["ref_count"] == 900 and row["cur_count"] == 680
    assert row["ref_missing_share"] == pytest.approx(0.1)
    assert row["cur_missing_share"] == pytest.approx(0.32)
    assert row["missing_change"] == pytest.approx(0.22)
    assert row["test_drifted"] is False and row["drifted"] is False  # same distribution otherwise
    flagged = drift(ref, cur, missing_threshold=0.2)["x"]
    assert flagged["missing_drift"] is True and flagged["drifted"] is True and flagged["test_drifted"] is False
    assert drift(ref, cur, missing_threshold=0.25)["x"]["drifted"] is False


def test_unseen_categories_listed(rng):
    ref = pd.DataFrame({"c": rng.choice(["a", "b"], 2000)})
    cur = pd.DataFrame({"c": np.r_[rng.choice(["a", "b"], 1800), ["zz"] * 150, ["yy"] * 50]})
    row = drift(ref, cur)["c"]
    assert sorted(row["unseen_categories"]) == ["yy", "zz"]
    assert row["unseen_share"] == pytest.approx(0.1)
    assert row["test"] == "jensenshannon" and row["drifted"] in (True, False)
    # the verdict itself: JS distance (natural log) of the shares over the union of categories
    keys = ["a", "b", "zz", "yy"]
    p = ref["c"].value_counts().reindex(keys, fill_value=0) / len(ref)
    q = cur["c"].value_counts().reindex(keys, fill_value=0) / len(cur)
    expected = float(distance.jensenshannon(p, q))
    assert expected >= 0.1  # 10 % unseen: clearly above the default threshold
    assert row["distance"] == pytest.approx(expected, rel=1e-12) and row["score"] == row["distance"]
    assert row["statistic"] == row["distance"] and row["p_value"] is None and row["threshold"] == 0.1
    assert row["test_drifted"] is True and row["drifted"] is True


@pytest.mark.parametrize("n", [50, 5000])
def test_constant_columns(rng, n):
    same = drift(pd.DataFrame({"k": np.ones(n)}), pd.DataFrame({"k": np.ones(n)}))["k"]
    assert same["drifted"] is False and same["score"] is not None
    moved = drift(pd.DataFrame({"k": np.ones(n)}), pd.DataFrame({"k": np.full(n, 2.0)}))["k"]
    assert moved["drifted"] is True
    rep = drift(pd.DataFrame({"k": np.ones(n)}), pd.DataFrame({"k": rng.normal(size=n)}), method="wasserstein")
    assert rep["k"]["drifted"] is True and np.isfinite(rep["k"]["distance"])  # normed by max(std, 0.001)
    assert_well_formed(rep)


def test_single_category_every_test():
    ref = pd.DataFrame({"c": ["a"] * 300})
    for method in ("chisquare", "ztest", "jensenshannon", "psi", "hellinger"):
        row = drift(ref, pd.DataFrame({"c": ["a"] * 200}), method=method)["c"]
        assert row["drifted"] is False, method
        assert row["score"] == (1.0 if method in ("chisquare", "ztest") else 0.0), method
    row = drift(ref, pd.DataFrame({"c": ["b"] * 200}), method="chisquare")["c"]
    assert row["drifted"] is True and row["unseen_categories"] == ["b"]


def test_empty_current_frame(rng):
    ref = pd.DataFrame({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100)})
    rep = drift(ref, ref.iloc[:0])
    assert rep.n_drifted == 0 and rep.dataset_drift is False
    assert {r["status"] for r in rep.rows} == {"empty current"}
    assert any("no rows" in w for w in rep.warnings)
    assert_well_formed(rep)


def test_all_missing_side(rng):
    ref = pd.DataFrame({"x": rng.normal(size=100)})
    cur = pd.DataFrame({"x": [np.nan] * 50})
    row = drift(ref, cur)["x"]
    assert row["status"] == "no current values" and row["test"] is None and row["drifted"] is False
    assert drift(ref, cur, missing_threshold=0.5)["x"]["drifted"] is True
    row = drift(cur, ref)["x"]
    assert row["status"] == "no reference values" and row["drifted"] is False


def test_columns_on_one_side_only():
    ref = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "old": [1, 2]})
    cur = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 2.0], "new": [1, 2]})
    with pytest.raises(DriftError) as err:
        drift(ref, cur)
    msg = str(err.value)
    assert "only in the reference: ['old']" in msg and "only in the current data: ['new']" in msg
    assert "columns=" in msg and err.value.only_in_reference == ["old"]
    assert [r["column"] for r in drift(ref, cur, columns=["a", "b"]).rows] == ["a", "b"]
    with pytest.raises(DriftError, match="not in the current data: \\['old'\\]"):
        drift(ref, cur, columns=["a", "old"])


def test_mixed_type_object_column():
    ref = pd.DataFrame({"m": pd.Series([1, "1", 2.0, "two", None, True] * 50, dtype=object)})
    cur = pd.DataFrame({"m": pd.Series([1, "two", 3, None] * 60, dtype=object)})
    row = drift(ref, cur)["m"]
    assert row["type"] == "categorical" and "mixed types" in row["note"]
    assert row["unseen_categories"] == ["3"]  # 1, "1" and 1.0 share the label "1"
    assert isinstance(row["drifted"], bool)
    # 250 reference / 180 current values; True == 1 for pandas, so it counts under "1" too.
    # An unseen category ("3"): 2 x k contingency chi-square without continuity correction.
    #          "1"  "2" "two" "3"
    table = [[150, 50, 50, 0], [60, 0, 60, 60]]
    expected = stats.chi2_contingency(table, correction=False)
    assert row["test"] == "chisquare" and row["ref_count"] == 250 and row["cur_count"] == 180
    assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9) and row["score"] == row["p_value"]
    assert expected.pvalue < 0.05 and row["test_drifted"] is True and row["drifted"] is True


def test_unhashable_objects_compared_by_text():
    ref = pd.DataFrame({"tags": pd.Series([["a"], ["a", "b"], None, {"k": 1}] * 30, dtype=object)})
    cur = pd.DataFrame({"tags": pd.Series([["a"], ["c"]] * 40, dtype=object)})
    row = drift(ref, cur)["tags"]
    assert row["type"] == "categorical" and row["unseen_categories"] == ["['c']"] and row["drifted"] is True


def test_datetimes_compared_as_timestamps(rng):
    t0 = pd.Timestamp("2024-01-01", tz="Europe/Paris")
    ref = pd.DataFrame({"t": t0 + pd.to_timedelta(rng.uniform(0, 30, 500), unit="D")})
    cur = pd.DataFrame({"t": (t0 + pd.to_timedelta(rng.uniform(5, 35, 500), unit="D")).tz_convert("UTC")})
    cur.loc[:9, "t"] = pd.NaT
    row = drift(ref, cur)["t"]
    assert row["type"] == "datetime" and row["test"] == "ks" and row["drifted"] is True
    assert row["cur_missing_share"] == pytest.approx(0.02)
    assert drift(ref, ref)["t"]["drifted"] is False
    # object column of datetime objects and naive datetime64[s]
    base = ref["t"].dt.tz_convert(None).dt.floor("s")
    obj = pd.DataFrame({"t": pd.Series([t.to_pydatetime() for t in base], dtype=object)})
    sec = pd.DataFrame({"t": base.astype("datetime64[s]")})
    assert drift(obj, sec)["t"]["statistic"] == pytest.approx(0.0, abs=1e-9)


def test_booleans(rng):
    ref = pd.DataFrame({"b": rng.random(800) < 0.3})
    cur = pd.DataFrame({"b": pd.array(np.r_[rng.random(700) < 0.6, [None] * 100], dtype="boolean")})
    row = drift(ref, cur)["b"]
    assert row["type"] == "boolean" and row["test"] == "ztest" and row["drifted"] is True
    assert row["cur_missing_share"] == pytest.approx(0.125)


def test_type_mismatch_is_compared_as_categorical(rng):
    ref = pd.DataFrame({"v": rng.integers(0, 3, 200)})
    cur = pd.DataFrame({"v": rng.choice(["0", "1", "2", "x"], 200)})
    row = drift(ref, cur)["v"]
    assert row["type"] == "categorical" and "type differs" in row["note"]
    assert row["unseen_categories"] == ["x"]


def test_column_types_override_and_per_column_options(rng):
    ref = pd.DataFrame({"code": rng.integers(0, 40, 3000), "y": rng.normal(size=3000)})
    cur = pd.DataFrame({"code": rng.integers(0, 40, 3000), "y": rng.normal(size=3000)})
    rep = drift(ref, cur, column_types={"code": "categorical"}, method={"y": "psi"}, threshold={"y": 0.5})
    assert rep["code"]["type"] == "categorical" and rep["code"]["test"] == "jensenshannon"
    assert rep["y"]["test"] == "psi" and rep["y"]["threshold"] == 0.5 and rep["y"]["severity"] == "none"
    with pytest.raises(DriftError, match="not compared"):
        drift(ref, cur, method={"nope": "ks"})
    text = pd.DataFrame({"v": ["1.5", "2", "oops", None] * 25})
    row = drift(text, text, column_types={"v": "numerical"})["v"]
    assert row["type"] == "numerical" and row["cur_missing_share"] == 0.5
    assert "25 current values could not be read as numerical" in row["note"]
    with pytest.raises(DriftError, match="Unknown column type"):
        drift(ref, cur, column_types={"code": "text"})
    with pytest.raises(DriftError, match="drift_share"):
        drift(ref, cur, drift_share=0)
    with pytest.raises(DriftError, match="Threshold"):
        drift(ref, cur, threshold=-1)


def test_bad_inputs_raise_drift_errors():
    df = pd.DataFrame({"a": [1.0]})
    with pytest.raises(DriftError, match="current data must be a DataFrame"):
        drift(df, [1, 2, 3])
    with pytest.raises(DriftError, match="reference must be"):
        drift(42, df)
    with pytest.raises(DriftError, match="duplicate column"):
        drift(pd.DataFrame([[1, 2]], columns=["a", "a"]), df)
    with pytest.raises(DriftError, match="not understood"):
        drift("nonsense", df)
    assert issubclass(DriftError, MlopsError)


def test_series_and_non_string_column_names(rng):
    rep = drift(pd.Series(rng.normal(size=100), name="s"), pd.Series(rng.normal(size=100), name="s"))
    assert rep.drifted_columns == [] and rep["s"]["test"] == "ks"
    rep = drift(pd.DataFrame({0: rng.normal(size=50)}), pd.DataFrame({0: rng.normal(size=50)}))
    assert rep[0]["column"] == "0"


def test_dataset_verdict_share_rule(rng):
    n = 500
    ref = pd.DataFrame({f"c{i}": rng.normal(size=n) for i in range(4)})
    cur = ref.copy()
    cur["c0"] += 2
    cur["c1"] += 2
    rep = drift(ref, cur)  # 2 of 4 drifted = 0.5 >= 0.5
    assert rep.n_drifted == 2 and rep.share_drifted == 0.5 and rep.dataset_drift is True
    assert drift(ref, cur, drift_share=0.6).dataset_drift is False
    restored = DriftReport.from_dict(json.loads(json.dumps(rep.to_dict())))
    assert restored.n_drifted == 2 and restored.dataset_drift is True and restored.table.shape[0] == 4


def test_large_frame_threaded_path_is_deterministic(rng):
    n = 60_000
    ref = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(6)} | {"c": rng.choice(list("abc"), n)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.02 * i, size=n) for i in range(6)} | {"c": rng.choice(list("abd"), n)})
    a = drift(ref, cur, workers=2)
    b = drift(ref, cur, workers=1)
    assert [r["score"] for r in a.rows] == [r["score"] for r in b.rows]
    assert_well_formed(a)


# ----------------------------------------------------------------- real data


def test_breast_cancer_median_split_flags_size_features():
    data = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    cut = data["mean radius"].median()
    ref, cur = data[data["mean radius"] <= cut], data[data["mean radius"] > cut]
    rep = drift(ref, cur)
    for col in ("mean radius", "mean perimeter", "mean area"):
        assert rep[col]["test"] == "ks" and rep[col]["drifted"] is True and rep[col]["p_value"] < 1e-20
    assert rep.dataset_drift is True
    assert_well_formed(rep)


def test_random_splits_flag_about_alpha():
    data = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(20):
        mask = rng.random(len(data)) < 0.5
        rep = drift(data[mask], data[~mask])
        assert rep.dataset_drift is False
        shares.append(rep.share_drifted)
    assert np.mean(shares) <= 0.08  # KS at 5 %; exact p-values are conservative


def test_random_splits_large_branch_digits():
    data = load_digits(as_frame=True).frame.drop(columns="target")  # 1797 rows, pixel columns 0..16
    rng = np.random.default_rng(1)
    for _ in range(3):
        idx = rng.permutation(len(data))
        ref, cur = data.iloc[idx[:1200]], data.iloc[idx[1200:]]
        rep = drift(ref, cur)
        assert {r["test"] for r in rep.rows if r["status"] == "ok"} <= {"wasserstein", "jensenshannon"}
        assert rep.dataset_drift is False
        assert rep.share_drifted <= 0.15
        assert_well_formed(rep)


def _fresh(code: str) -> str:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    return out.stdout


def test_top_level_api_in_a_fresh_interpreter():
    """``mlops_nb.drift(...)``, ``mlops_nb.drift_over_time`` and ``mlops_nb.DriftReport`` right
    after a plain ``import mlops_nb`` (the lazy re-export in mlops_nb/__init__.py)."""
    out = _fresh(
        "import pandas as pd, mlops_nb\n"
        "df = pd.DataFrame({'a': [1.0, 2.0, 3.0, 4.0]})\n"
        "rep = mlops_nb.drift(df, df)\n"
        "assert isinstance(rep, mlops_nb.DriftReport) and callable(mlops_nb.drift_over_time)\n"
        "print(rep.summary())\n"
    )
    assert "0 of 1 columns drifted" in out


def test_profiles_import_without_scipy():
    """Capture builds a profile for every tracked DataFrame: it must stay a light import."""
    out = _fresh("import sys, mlops_nb.profiling.profile\nprint('scipy.stats' in sys.modules)\n")
    assert out.strip() == "False"
