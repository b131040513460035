"""drift_over_time: periods, chunks, profile references, plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_nb.drift import DriftTimeline, drift_over_time
from mlops_nb.errors import DriftError
from mlops_nb.profiling.profile import build_profile


@pytest.fixture
def frames():
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(list("abc"), 2000)})
    n = 144 * 7 * 6  # six weeks of rows every 10 minutes
    t = pd.date_range("2024-01-01", periods=n, freq="10min")
    x = rng.normal(size=n)
    x[t >= "2024-01-29"] += 1.0  # drift starts in week 5
    cur = pd.DataFrame({"when": t, "x": x, "c": rng.choice(list("abc"), n)})
    return ref, cur


def test_weekly_periods(frames):
    ref, cur = frames
    tl = drift_over_time(ref, cur, by="W-SUN", time_column="when")
    assert isinstance(tl, DriftTimeline)
    assert set(tl["column"]) == {"x", "c"}  # the time column itself is not tested
    assert len(tl.chunks) == 6 and tl.chunks["n_rows"].sum() == len(cur)
    x = tl[tl["column"] == "x"].reset_index(drop=True)
    assert x["drifted"].tolist() == [False] * 4 + [True] * 2
    assert (x["test"] == "wasserstein").all() and (x["threshold"] == 0.1).all()
    assert x["start"].iloc[0] == pd.Timestamp("2024-01-01")
    assert tl.chunks["dataset_drift"].tolist() == [False] * 4 + [True] * 2


def test_chunks_and_datetime_index(frames):
    ref, cur = frames
    tl = drift_over_time(ref, cur.drop(columns="when"), chunk_size=2500, method="psi")
    assert tl["chunk"].max() == (len(cur) - 1) // 2500
    assert tl["n_rows"].iloc[-1] == len(cur) % 2500
    assert tl.chunks["start"].tolist()[:2] == [0, 2500]
    assert set(tl["test"]) == {"psi"}
    indexed = cur.set_index("when")
    tl2 = drift_over_time(ref, indexed, by="14D")
    assert len(tl2.chunks) == 3


def test_profile_reference_and_missing_times(frames):
    ref, cur = frames
    cur = cur.copy()
    cur.loc[:9, "when"] = pd.NaT
    tl = drift_over_time(build_profile(ref), cur, by="W", time_column="when")
    assert tl.attrs["rows_without_time"] == 10
    assert tl[tl["column"] == "x"]["drifted"].tolist() == [False] * 4 + [True] * 2


def test_plot_draws_threshold_per_column(frames):
    ref, cur = frames
    tl = drift_over_time(ref, cur, by="W", time_column="when", method={"c": "chisquare"})
    fig = tl.plot()
    axes = fig.axes
    assert len(axes) == 2
    for ax in axes:
        assert any(line.get_linestyle() == "--" for line in ax.get_lines())  # threshold
    assert axes[1].get_yscale() == "log"  # p-values on a log axis
    assert "x" in axes[0].get_title()


def test_bad_arguments(frames):
    ref, cur = frames
    with pytest.raises(DriftError, match="exactly one of"):
        drift_over_time(ref, cur)
    with pytest.raises(DriftError, match="exactly one of"):
        drift_over_time(ref, cur, by="W", chunk_size=10)
    with pytest.raises(DriftError, match="time_column="):
        drift_over_time(ref, cur.drop(columns="when"), by="W")
    with pytest.raises(DriftError, match="not a pandas frequency"):
        drift_over_time(ref, cur, by="fortnightly", time_column="when")
    with pytest.raises(DriftError, match="positive integer"):
        drift_over_time(ref, cur, chunk_size=0)
    with pytest.raises(DriftError, match="not a column"):
        drift_over_time(ref, cur, by="W", time_column="nope")
