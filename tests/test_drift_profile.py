"""Reference profiles: format, size, speed, profile-vs-raw tolerances on real data,
and resolve_reference against a store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from mlops_nb.drift import drift, resolve_reference
from mlops_nb import fingerprint
from mlops_nb.errors import DriftError, NotFoundError
from mlops_nb.profiling.profile import build_profile, is_profile

# Documented tolerances (mlops_nb/profile.py): |profile - raw| per test
TOLERANCE = {
    "ks": lambda raw: 0.005,
    "wasserstein": lambda raw: 0.01,
    "jensenshannon": lambda raw: 0.02,
    "hellinger": lambda raw: 0.02,
    "psi": lambda raw: 0.05 + 0.25 * raw,
}


def test_profile_of_other_objects_is_none():
    assert build_profile([1, 2, 3]) is None
    assert build_profile(np.arange(3)) is None
    assert build_profile("text") is None


def test_profile_format_is_json_and_typed():
    rng = np.random.default_rng(0)
    n = 5000
    df = pd.DataFrame({
        "x": rng.normal(size=n), "k": rng.integers(0, 5, n), "c": rng.choice(["a", "b", None], n),
        "f": rng.random(n) < 0.2, "t": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
        3: rng.normal(size=n),
    })  # fmt: skip
    df.loc[:9, "x"] = np.nan
    df.loc[10:14, "x"] = np.inf
    prof = build_profile(df)
    json.dumps(prof, allow_nan=False)
    assert is_profile(prof) and prof["n_rows"] == n and prof["n_columns"] == 6
    cols = prof["columns"]
    assert {k: v["type"] for k, v in cols.items()} == {
        "x": "numerical", "k": "numerical", "c": "categorical", "f": "boolean", "t": "datetime", "3": "numerical"
    }  # fmt: skip
    assert cols["x"]["missing"] == 15 and "sketch" in cols["x"]
    assert cols["k"]["values"] == [0.0, 1.0, 2.0, 3.0, 4.0] and sum(cols["k"]["counts"]) == n
    assert set(cols["c"]["values"]) == {"a", "b"} and cols["c"]["missing"] > 0
    assert cols["f"]["values"] == ["False", "True"] or cols["f"]["values"] == ["True", "False"]
    assert cols["t"]["unit"] == "s"
    assert build_profile(df["x"])["kind"] == "series"


def test_profile_is_small_even_for_wide_categories_and_long_labels():
    rng = np.random.default_rng(1)
    n = 200_000
    df = pd.DataFrame({
        "x": rng.standard_t(3, n),
        "ids": [f"user-{i}" for i in rng.integers(0, 50_000, n)],
        "text": [("lorem ipsum " * 40) + str(i) for i in rng.integers(0, 300, n)],
    })  # fmt: skip
    prof = build_profile(df)
    sizes = {k: len(json.dumps(v)) for k, v in prof["columns"].items()}
    assert max(sizes.values()) <= 6000, sizes
    assert prof["columns"]["ids"]["other"] > 0 and len(prof["columns"]["ids"]["values"]) == 100
    assert sum(len(v) for v in prof["columns"]["text"]["values"]) <= 2000


def test_exact_profile_gives_exactly_the_raw_results():
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"k": rng.integers(0, 30, 4000).astype(float), "c": rng.choice(list("abcd"), 4000),
                        "small": rng.normal(size=4000).round(1)})  # fmt: skip
    ref.loc[: len(ref) - 201, "small"] = np.nan  # 200 non-missing rows: kept exactly
    cur = pd.DataFrame({"k": rng.integers(0, 32, 3000).astype(float), "c": rng.choice(list("abce"), 3000),
                        "small": rng.normal(0.2, size=3000).round(1)})  # fmt: skip
    prof = build_profile(ref)
    for method in (None, "ks", "chisquare", "psi", "jensenshannon", "hellinger", "wasserstein", "ztest"):
        kw = {} if method is None else {"method": method}
        cols = ["k", "small"] if method in ("ks", "wasserstein") else ["k", "c", "small"]
        raw, fromp = drift(ref, cur, columns=cols, **kw), drift(prof, cur, columns=cols, **kw)
        for a, b in zip(raw.rows, fromp.rows):
            assert a["statistic"] == pytest.approx(b["statistic"], rel=1e-9, abs=1e-12), (method, a["column"])
            assert a["drifted"] == b["drifted"]
            assert a["unseen_categories"] == b["unseen_categories"]
            assert a["ref_missing_share"] == pytest.approx(b["ref_missing_share"])


def _splits():
    for loader in (load_breast_cancer, load_diabetes, load_wine, load_digits):
        data = loader(as_frame=True).frame
        for col in data.columns[:3]:
            cut = data[col].median()
            yield data[data[col] <= cut], data[data[col] > cut]
        mask = np.random.default_rng(0).random(len(data)) < 0.5
        yield data[mask], data[~mask]


@pytest.mark.parametrize("method", ["ks", "wasserstein", "jensenshannon", "hellinger", "psi"])
def test_profile_vs_raw_within_documented_tolerance_on_real_data(method):
    n_cols = agree = 0
    for ref, cur in _splits():
        raw = drift(ref, cur, method=method)
        approx = drift(build_profile(ref), cur, method=method)
        for a, b in zip(raw.rows, approx.rows):
            if a["statistic"] is None:
                continue
            n_cols += 1
            assert abs(a["statistic"] - b["statistic"]) <= TOLERANCE[method](a["statistic"]), (method, a, b)
            agree += a["test_drifted"] == b["test_drifted"]
    assert n_cols > 150
    assert agree / n_cols >= 0.98


def test_profile_vs_raw_large_synthetic_with_point_mass_and_heavy_tails():
    rng = np.random.default_rng(4)
    n = 100_000
    ref = pd.DataFrame({"zero_inflated": np.where(rng.random(n) < 0.3, 0.0, rng.lognormal(0, 1, n)),
                        "heavy": rng.standard_t(2, n)})  # fmt: skip
    cur = pd.DataFrame({"zero_inflated": np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(0.1, 1, n)),
                        "heavy": rng.standard_t(2, n) + 0.05})  # fmt: skip
    prof = build_profile(ref)
    for method in TOLERANCE:
        raw, approx = drift(ref, cur, method=method), drift(prof, cur, method=method)
        for a, b in zip(raw.rows, approx.rows):
            assert abs(a["statistic"] - b["statistic"]) <= TOLERANCE[method](a["statistic"]), (method, a, b)
    # default tests: identical choices and decisions
    raw, approx = drift(ref, cur), drift(prof, cur)
    assert [r["test"] for r in raw.rows] == [r["test"] for r in approx.rows]
    assert [r["drifted"] for r in raw.rows] == [r["drifted"] for r in approx.rows]


def test_breast_cancer_profile_flags_the_same_size_features():
    data = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    cut = data["mean radius"].median()
    ref, cur = data[data["mean radius"] <= cut], data[data["mean radius"] > cut]
    rep = drift(build_profile(ref), cur)
    assert rep.reference_kind == "profile"
    for col in ("mean radius", "mean perimeter", "mean area"):
        assert rep[col]["drifted"] is True
        assert "sketch" in (rep[col]["note"] or "")


def test_profile_categories_beyond_top_k_are_pooled_not_unseen():
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"id": [f"u{i}" for i in rng.integers(0, 1000, 20_000)]})
    cur = pd.DataFrame({"id": [f"u{i}" for i in rng.integers(0, 1000, 5_000)] + ["brand-new"] * 10})
    row = drift(build_profile(ref), cur)["id"]
    assert row["unseen_categories"] == [] and "pooled" in row["note"]
    assert drift(ref, cur)["id"]["unseen_categories"] == ["brand-new"]


def test_profile_with_current_of_another_type_is_incomparable_not_a_crash():
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"v": rng.normal(size=2000)})
    cur = pd.DataFrame({"v": rng.choice(["a", "b"], 100)})
    row = drift(build_profile(ref), cur)["v"]
    assert row["status"] == "incomparable" and row["drifted"] is True and "sketch" in row["note"]


# ----------------------------------------------------------------- resolve_reference


def _tracked_run(store, frames: dict[str, pd.DataFrame], *, with_array: bool = True) -> tuple[str, str]:
    """A real run reading ``frames`` (and an array) that produced a real model; (run id, model digest)."""
    import mlops_nb
    from sklearn.dummy import DummyClassifier

    inputs = dict(frames)
    if with_array:
        inputs["arr"] = np.arange(3.0)
    with mlops_nb.track(name="train", inputs=inputs, store=store) as run:
        first = next(iter(frames.values()))
        digest = run.log_model(DummyClassifier().fit(first, np.zeros(len(first))), "clf")
    return run.id, digest


def test_resolve_reference_forms(store):
    rng = np.random.default_rng(7)
    small = pd.DataFrame({"x": rng.normal(size=100)})
    big = pd.DataFrame({"x": rng.normal(size=3000), "y": rng.normal(size=3000)})
    run_id, model = _tracked_run(store, {"small": small, "train": big})
    del big  # no raw training data is kept: everything below comes from stored profiles
    assert resolve_reference(small) is small
    prof = build_profile(small)
    assert resolve_reference(prof) is prof
    got = resolve_reference(f"run:{run_id}", store=store)
    assert got["source"]["name"] == "train" and got["n_rows"] == 3000
    assert "largest of 2 DataFrame inputs" in got["source"]["note"]
    named = resolve_reference(f"run:{run_id[:8]}:small", store=store)
    assert named["source"]["name"] == "small" and named["source"]["digest"] == fingerprint(small)
    assert resolve_reference(f"model:{model[:10]}", store=store)["source"]["run_id"] == run_id
    assert resolve_reference(f"model:{model}:small", store=store)["n_rows"] == 100
    train_digest = got["source"]["digest"]
    assert resolve_reference(f"data:{train_digest[:8]}", store=store)["n_rows"] == 3000


def test_resolve_reference_errors_are_clear(store):
    import mlops_nb
    from sklearn.dummy import DummyClassifier

    run_id, _ = _tracked_run(store, {"train": pd.DataFrame({"x": [1.0, 2.0]})})
    with mlops_nb.track(name="no-data", store=store) as bare:  # a model whose run read no data
        orphan = bare.log_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), "m")
    with pytest.raises(DriftError, match="No registered model .churn."):
        resolve_reference("model:churn@production", store=store)
    with pytest.raises(DriftError, match="recorded no DataFrame or Series input.*Pass the reference DataFrame"):
        resolve_reference(f"model:{orphan}", store=store)
    with pytest.raises(DriftError, match="no DataFrame input named 'nope'.*\\['train'\\]"):
        resolve_reference(f"run:{run_id}:nope", store=store)
    with pytest.raises(NotFoundError):
        resolve_reference("run:ffffffff", store=store)
    with pytest.raises(DriftError, match="Unknown reference kind"):
        resolve_reference("file:x.csv", store=store)
    with pytest.raises(DriftError, match="not a data profile"):
        resolve_reference({"a": 1}, store=store)


def test_drift_with_run_reference_uses_profile_and_labels_report(store):
    rng = np.random.default_rng(8)
    train = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(list("abc"), 3000)})
    run_id, _ = _tracked_run(store, {"train": train}, with_array=False)
    digest = fingerprint(train)
    del train
    cur = pd.DataFrame({"x": rng.normal(0.5, size=1000), "c": rng.choice(list("abc"), 1000)})
    rep = drift(f"run:{run_id}", cur, store=store)
    assert rep.reference_label == f"run:{run_id}" and rep.reference_digest == digest
    assert rep.reference_kind == "profile" and rep["x"]["drifted"] is True and rep["c"]["drifted"] is False
