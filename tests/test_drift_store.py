"""Drift against the registry: run/model references from stored profiles, saved checks."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest

import mlops_nb
from mlops_nb.drift import DriftReport, drift
from mlops_nb.errors import DriftError
from mlops_nb.fingerprint import fingerprint
from mlops_nb.widgets.drift_panel import DriftPanel


def _frames(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 4000
    train = pd.DataFrame({"x": rng.normal(size=n), "y": rng.exponential(size=n), "c": rng.choice(list("abc"), n)})
    new = pd.DataFrame({"x": rng.normal(0.6, size=1500), "y": rng.exponential(size=1500),
                        "c": rng.choice(list("abcd"), 1500)})  # fmt: skip
    return train, new


def test_run_reference_needs_no_raw_data(store):
    train, new = _frames()
    with mlops_nb.track(name="t", inputs={"train": train}) as run:
        pass
    digest = fingerprint(train)
    expected = drift(train, new)
    del train
    gc.collect()
    rep = drift(f"run:{run.id}", new)
    assert rep.reference_kind == "profile" and rep.reference_label == f"run:{run.id}"
    assert rep.reference_digest == digest
    assert [r["drifted"] for r in rep.rows] == [r["drifted"] for r in expected.rows]
    assert rep["x"]["drifted"] is True and rep["c"]["unseen_categories"] == ["d"]
    short = drift(f"run:{run.id[:8]}:train", new)  # id prefix and input name
    assert short.n_drifted == rep.n_drifted


def test_several_inputs_pick_largest_and_say_so(store):
    import warnings

    train, new = _frames(1)
    target = pd.Series(np.arange(len(train) * 3), name="target")  # a bigger Series is not a candidate
    with mlops_nb.track(name="t", inputs={"train": train, "holdout": train.iloc[:100], "target": target}) as run:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the choice is recorded in the report, not warned about
        rep = drift(f"run:{run.id}", new)
    assert rep.reference_rows == len(train) and rep.reference_label == f"run:{run.id}"
    note = rep.reference_note
    assert note.startswith("input 'train' (largest of 2 DataFrame inputs: ") and "target" not in note
    assert "holdout" in note and note.endswith(f"; choose with run:{run.id[:8]}:NAME)")
    assert not any("largest" in w for w in rep.warnings)
    assert "largest of 2 DataFrame inputs" in rep._repr_html_() and "largest" in repr(rep)
    assert DriftReport.from_dict(rep.to_dict()).reference_note == rep.reference_note
    holdout = drift(f"run:{run.id}:holdout", new)
    assert holdout.reference_rows == 100 and holdout.reference_note == "input 'holdout'"


def test_profile_reference_notes_sketch_once(store):
    train, new = _frames(5)
    with mlops_nb.track(name="t", inputs={"train": train}) as run:
        pass
    rep = drift(f"run:{run.id}", new)
    assert rep.reference_note == "input 'train'"
    assert "quantile sketch" in rep["x"]["note"]  # kept in the data
    html = rep._repr_html_()
    assert html.count("quantile sketch") == 1  # shown once, in the header
    assert ">note<" not in html  # no row-specific note left, so no note column


def test_model_reference_uses_training_data(store):
    from sklearn.linear_model import LinearRegression

    train, new = _frames(2)
    with mlops_nb.track(name="fit", inputs={"train": train}) as run:
        model = LinearRegression().fit(train[["x"]], train["y"])
        model_digest = run.log_model(model)
    rep = drift(f"model:{model_digest}", new)
    assert rep.reference_digest == fingerprint(train) and rep["x"]["drifted"] is True
    with pytest.raises(DriftError, match="No registered model 'fit'"):
        drift("model:fit@production", new)
    mlops_nb.register(model_digest, name="fit", alias="production")
    for ref in ("model:fit@production", "model:fit:1", "model:fit@production:train"):
        assert drift(ref, new).reference_digest == fingerprint(train)
    with pytest.raises(DriftError, match="no alias 'staging'"):
        drift("model:fit@staging", new)


def test_save_records_check(store):
    train, new = _frames(3)
    with mlops_nb.track(name="t", inputs={"train": train}) as run:
        pass
    rep = drift(f"run:{run.id}", new)
    check_id = rep.save()
    checks = store.list_drift_checks()
    assert checks[0]["id"] == check_id
    saved = checks[0]
    assert saved["reference"] == f"run:{run.id}"
    assert saved["reference_digest"] == fingerprint(train)
    assert saved["current_digest"] == fingerprint(new)
    assert saved["n_columns"] == 3 and saved["n_drifted"] == rep.n_drifted
    assert bool(saved["dataset_drift"]) == rep.dataset_drift
    again = DriftReport.from_dict(saved["result"])
    assert again.summary() == rep.summary() and again.histograms.keys() == rep.histograms.keys()
    # a DataFrame reference is fingerprinted at save time
    rep2 = drift(train, new, reference_label="train.parquet")
    rep2.save()
    assert store.list_drift_checks()[0]["reference_digest"] == fingerprint(train)


def test_magic_with_run_reference_and_save(shell, store):
    train, new = _frames(4)
    with mlops_nb.track(name="t", inputs={"train": train}) as run:
        pass
    shell.user_ns["new"] = new
    panel = shell.run_line_magic("mlops", f"drift run:{run.id} new --save")
    assert isinstance(panel, DriftPanel) and panel.report.check_id is not None
    assert store.list_drift_checks()[0]["reference"] == f"run:{run.id}"
