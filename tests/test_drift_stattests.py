"""Drift tests: statistics and p-values against scipy, hand computation and
Evidently's formulas (re-derived here independently with numpy/scipy)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from mlops_nb.drift import drift
from mlops_nb.profiling.dists import ExactDist, SketchDist, build_sketch, cdf_distances, sketch_below, sturges_edges
from mlops_nb.drift.stattests import default_test, ks_pvalue
from mlops_nb.errors import DriftError

RNG = np.random.default_rng(20261124)


def one(ref, cur, **kw):
    """Drift row of a single column named x."""
    return drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), **kw)["x"]


# ----------------------------------------------------------------- hand-computed values


def test_ks_hand_computed():
    row = one([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], method="ks")
    assert row["statistic"] == 1.0
    assert row["p_value"] == pytest.approx(0.1)  # 2 / C(6, 3): exact two-sided
    assert row["drifted"] is False  # 0.1 > 0.05


def test_chisquare_hand_computed():
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 30 + ["b"] * 70
    row = one(ref, cur, method="chisquare")
    assert row["statistic"] == pytest.approx(16.0)  # (20^2/50) * 2
    assert row["p_value"] == pytest.approx(stats.chi2.sf(16.0, 1))
    assert row["drifted"] is True


def test_ztest_hand_computed():
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 30 + ["b"] * 70
    row = one(ref, cur, method="ztest")
    z = (0.5 - 0.7) / math.sqrt(0.6 * 0.4 * (1 / 100 + 1 / 100))
    assert row["statistic"] == pytest.approx(z)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert row["p_value"] == pytest.approx(0.003892, abs=1e-6)


def test_wasserstein_hand_computed():
    row = one([0.0, 1.0], [1.0, 2.0], method="wasserstein")
    assert row["distance"] == pytest.approx(2.0)  # W1 = 1, np.std([0, 1]) = 0.5
    assert row["drifted"] is True


def test_psi_js_hellinger_hand_computed():
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 30 + ["b"] * 70
    psi = 0.2 * math.log(0.5 / 0.3) + (-0.2) * math.log(0.5 / 0.7)
    assert one(ref, cur, method="psi")["distance"] == pytest.approx(psi)
    assert one(ref, cur, method="psi")["severity"] == "moderate"
    assert one(ref, cur, method="jensenshannon")["distance"] == pytest.approx(
        distance.jensenshannon([0.5, 0.5], [0.3, 0.7])
    )
    hell = math.sqrt(1 - (math.sqrt(0.15) + math.sqrt(0.35)))
    assert one(ref, cur, method="hellinger")["distance"] == pytest.approx(hell)


# ----------------------------------------------------------------- against scipy


@pytest.mark.parametrize("n1,n2", [(40, 60), (700, 500), (3000, 12000)])
def test_ks_matches_scipy(n1, n2):
    a, b = RNG.normal(size=n1), RNG.normal(0.1, 1.1, size=n2)
    a[:5] = b[:5] = 0.25  # ties across samples
    row = one(a, b, method="ks")
    ref = stats.ks_2samp(a, b)
    assert row["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n1,n2", [(10, 10), (100, 37), (15000, 9000)])
def test_ks_pvalue_function_matches_scipy_modes(n1, n2):
    a, b = RNG.normal(size=n1), RNG.normal(0.3, size=n2)
    res = stats.ks_2samp(a, b)  # exact below 10,000 rows, asymptotic above
    assert ks_pvalue(res.statistic, n1, n2) == pytest.approx(res.pvalue, rel=1e-9)


def test_wasserstein_matches_scipy_with_ties_and_weights():
    a = np.round(RNG.normal(size=2000), 1)
    b = np.round(RNG.normal(0.3, size=1500), 1)
    row = one(a, b, method="wasserstein")
    assert row["distance"] == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), rel=1e-10)
    # weighted exact representation (as kept by profiles) gives the same distances
    ua, ca = np.unique(a, return_counts=True)
    ks_w, w_w = cdf_distances(ExactDist(ua, ca), ExactDist(np.sort(b)))
    assert w_w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-10)
    assert ks_w == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_chisquare_matches_scipy_evidently_form():
    ref = RNG.choice(list("abcd"), 900, p=[0.4, 0.3, 0.2, 0.1])
    cur = RNG.choice(list("abcd"), 400, p=[0.3, 0.3, 0.3, 0.1])
    row = one(ref, cur, method="chisquare")
    keys = sorted(set(ref))
    f_obs = [int((cur == k).sum()) for k in keys]
    f_exp = [int((ref == k).sum()) * len(cur) / len(ref) for k in keys]
    res = stats.chisquare(f_obs, f_exp)
    assert row["statistic"] == pytest.approx(res.statistic)
    assert row["p_value"] == pytest.approx(res.pvalue)


def test_chisquare_unseen_category_uses_contingency_test():
    ref = ["a"] * 60 + ["b"] * 40
    cur = ["a"] * 50 + ["b"] * 40 + ["c"] * 10
    row = one(ref, cur, method="chisquare")
    table = np.array([[60, 40, 0], [50, 40, 10]])
    res = stats.chi2_contingency(table, correction=False)
    assert math.isfinite(row["statistic"])
    assert row["statistic"] == pytest.approx(res.statistic)
    assert row["p_value"] == pytest.approx(res.pvalue)
    assert row["unseen_categories"] == ["c"]
    assert row["unseen_share"] == pytest.approx(0.1)
    assert "contingency" in row["note"]


# ----------------------------------------------------------------- Evidently's binning


def _evidently_binned(ref, cur, numeric):
    """Evidently's get_binned_data, re-derived: Sturges bins on the pooled data when the
    reference has more than 20 distinct values, else per-value shares."""
    ref, cur = pd.Series(ref), pd.Series(cur)
    if numeric and ref.nunique() > 20:
        bins = np.histogram_bin_edges(pd.concat([ref, cur]).to_numpy(), bins="sturges")
        return np.histogram(ref, bins)[0] / len(ref), np.histogram(cur, bins)[0] / len(cur)
    keys = sorted(set(ref) | set(cur))
    return (np.array([(ref == k).sum() for k in keys]) / len(ref),
            np.array([(cur == k).sum() for k in keys]) / len(cur))  # fmt: skip


def _fill(p):
    m = p[p != 0].min()
    return np.where(p == 0, m / 1e6 if m <= 1e-4 else 1e-4, p)


@pytest.mark.parametrize("kind", ["continuous", "few_values"])
def test_js_and_psi_follow_evidently_binning(kind):
    if kind == "continuous":
        a, b = RNG.gamma(2.0, size=5000), RNG.gamma(2.2, size=3000)
    else:
        a, b = RNG.integers(0, 8, 5000).astype(float), RNG.integers(0, 9, 3000).astype(float)
    r, c = _evidently_binned(a, b, numeric=True)
    js = one(a, b, method="jensenshannon")["distance"]
    assert js == pytest.approx(distance.jensenshannon(r, c), rel=1e-9)
    rf, cf = _fill(r), _fill(c)
    psi = one(a, b, method="psi")["distance"]
    assert psi == pytest.approx(np.sum((rf - cf) * np.log(rf / cf)), rel=1e-9)


def test_hellinger_numerical_follows_evidently():
    a, b = RNG.normal(size=3000), RNG.normal(0.4, size=2000)
    keys = np.union1d(a, b)
    bins = np.histogram_bin_edges(keys, bins="sturges")
    h1 = np.histogram(a, bins=bins, density=True)[0]
    h2 = np.histogram(b, bins=bins, density=True)[0]
    width = (bins.max() - bins.min()) / (len(bins) - 1)
    expected = math.sqrt(1 - min(max(np.sum(np.sqrt(h1 * h2)) * width, 0), 1))
    assert one(a, b, method="hellinger")["distance"] == pytest.approx(expected, rel=1e-9)


def test_sturges_edges_match_numpy():
    for n, lo, hi in [(10, 0.0, 1.0), (1_000_003, -3.2, 7.9), (57, 5.0, 5.0000001)]:
        data = np.concatenate([[lo, hi], np.full(n - 2, (lo + hi) / 2)])
        assert np.array_equal(sturges_edges(lo, hi, n), np.histogram_bin_edges(data, bins="sturges"))


def test_sketch_cdf_is_exact_at_knots_with_point_mass():
    x = np.sort(np.concatenate([np.round(RNG.normal(size=3000), 6), np.zeros(1500)]))  # point mass at 0
    sk = build_sketch(x)
    below = sketch_below(np.array(sk["equal"]), np.array(sk["between"]))
    s = SketchDist(sk["knots"], below, sk["equal"], x.size, x.mean(), x.std(), 3001)
    knots = np.array(sk["knots"])
    exact = ExactDist(x)
    assert np.allclose(s.cdf(knots), exact.cdf(knots), atol=1e-12)
    assert np.allclose(s.cdf(knots, left=True), exact.cdf(knots, left=True), atol=1e-12)
    assert s.cdf(np.array([0.0]))[0] - s.cdf(np.array([0.0]), left=True)[0] == pytest.approx(1501 / 4500, abs=1e-3)
    assert s.cdf(np.array([knots[0] - 1, knots[-1] + 1])).tolist() == [0.0, 1.0]
    assert np.all(np.diff(s.cdf(np.linspace(-4, 4, 1001))) >= 0)


# ----------------------------------------------------------------- Evidently's rule


@pytest.mark.parametrize(
    "ctype,n_ref,n_values,expected",
    [
        ("numerical", 1000, 6, "ks"), ("numerical", 1000, 5, "chisquare"), ("numerical", 1000, 3, "chisquare"),
        ("numerical", 1000, 2, "ztest"), ("categorical", 1000, 3, "chisquare"), ("categorical", 1000, 2, "ztest"),
        ("boolean", 500, 2, "ztest"), ("numerical", 1001, 6, "wasserstein"), ("numerical", 1001, 5, "jensenshannon"),
        ("categorical", 1001, 50, "jensenshannon"), ("datetime", 1001, 100, "wasserstein"), ("datetime", 10, 100, "ks"),
    ],
)  # fmt: skip
def test_default_rule_table(ctype, n_ref, n_values, expected):
    assert default_test(ctype, n_ref, n_values) == expected


@pytest.mark.parametrize("n_ref,branch", [(1000, "small"), (1001, "large")])
def test_default_choice_and_decisions_on_constructed_frames(n_ref, branch):
    """The size branch counts non-missing reference rows; decisions follow each test's rule."""
    rng = np.random.default_rng(n_ref)
    m = n_ref + 50
    ref = pd.DataFrame({
        "cont": np.r_[rng.normal(size=n_ref), [np.nan] * 50],  # 50 missing: not counted
        "few": np.r_[rng.integers(0, 4, n_ref).astype(float), [np.nan] * 50],
        "two": np.r_[rng.integers(0, 2, n_ref).astype(float), [np.nan] * 50],
        "cat": np.r_[rng.choice(list("abc"), n_ref), [None] * 50],
        "flag": np.r_[rng.random(n_ref) < 0.5, [None] * 50],
    })  # fmt: skip
    cur = pd.DataFrame({
        "cont": rng.normal(0.5, size=m), "few": rng.integers(0, 4, m).astype(float),
        "two": rng.integers(0, 2, m).astype(float), "cat": rng.choice(list("abc"), m, p=[0.6, 0.2, 0.2]),
        "flag": rng.random(m) < 0.5,
    })  # fmt: skip
    rep = drift(ref, cur)
    tests = {r["column"]: r["test"] for r in rep.rows}
    if branch == "small":
        assert tests == {"cont": "ks", "few": "chisquare", "two": "ztest", "cat": "chisquare", "flag": "ztest"}
    else:
        assert tests == {"cont": "wasserstein", "few": "jensenshannon", "two": "jensenshannon",
                         "cat": "jensenshannon", "flag": "jensenshannon"}  # fmt: skip
    assert rep["cont"]["drifted"] and rep["cat"]["drifted"]
    assert not rep["few"]["drifted"] and not rep["two"]["drifted"] and not rep["flag"]["drifted"]
    for r in rep.rows:
        assert isinstance(r["drifted"], bool)


def test_threshold_direction_p_value_vs_distance():
    a, b = RNG.normal(size=400), RNG.normal(0.2, size=400)
    p = one(a, b, method="ks")["p_value"]
    assert one(a, b, method="ks", threshold=p)["drifted"] is True  # KS: p <= threshold
    d = one(a, b, method="wasserstein")["distance"]
    assert one(a, b, method="wasserstein", threshold=d)["drifted"] is True  # distance >= threshold
    assert one(a, b, method="wasserstein", threshold=d * 1.001)["drifted"] is False


def test_method_names_and_errors():
    a = RNG.normal(size=100)
    assert one(a, a, method="z")["test"] == "ztest"  # Evidently's name accepted
    with pytest.raises(DriftError, match="Unknown drift test 'nope'.*ks, chisquare"):
        one(a, a, method="nope")
    with pytest.raises(DriftError, match="needs a numerical"):
        one(["a", "b"], ["a", "b"], method="ks")
