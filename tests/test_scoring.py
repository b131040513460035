"""Batch scoring from a registered alias: schema checks and the recorded scoring run."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from scoring_support import train_churn

import mlops_nb
from mlops_nb.cli import main
from mlops_nb.errors import SchemaMismatch
from mlops_nb.monitoring.datasets import FEATURES, churn_frame


def test_predict_records_a_scoring_run_with_drift(store, tmp_path):
    v1 = train_churn(store)
    new = churn_frame(800, seed=5, price_increase=20)
    path = tmp_path / "new.parquet"
    new.to_parquet(path)
    result = mlops_nb.predict("churn@production", path, output=tmp_path / "scores.csv", keep=["customer_id"], store=store)
    assert (result.model, result.version, result.rows) == ("churn", v1.version, 800)
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["customer_id", "prediction", "probability"]
    assert scores["customer_id"].tolist() == new["customer_id"].tolist()
    model = mlops_nb.load_model("churn:1", store=store)
    assert (scores["prediction"].to_numpy() == model.predict(new[FEATURES])).all()
    run = store.get_run(result.run_id)
    assert run["name"] == "score-churn" and run["status"] == "finished"
    assert run["params"]["model_version"] == 1 and run["params"]["model_digest"] == v1.digest
    assert run["tags"]["model"] == "churn" and run["tags"]["kind"] == "scoring"
    assert run["metrics"]["rows"] == 800
    (inp,) = run["inputs"]
    assert inp["digest"] == mlops_nb.fingerprint(new) and inp["shape"] == [800, new.shape[1]]
    # prices rose by 20: monthly_charges drifted against the training profile
    assert "monthly_charges" in result.drift.drifted_columns
    assert run["metrics"]["drift_share"] == pytest.approx(result.drift.share_drifted)
    (check,) = store.list_drift_checks()
    assert check["reference"] == "model:churn:1" and check["current_digest"] is not None


def test_alias_is_resolved_once_and_unchanged_data_does_not_drift(store):
    train_churn(store)
    v2 = train_churn(store, seed=3, alias=None)
    mlops_nb.promote("churn", v2.version, "production", store=store)
    result = mlops_nb.predict("churn@production", churn_frame(600, seed=9), store=store)
    assert result.version == 2 and result.digest == v2.digest
    assert result.drift.drifted_columns == []


def test_schema_errors_name_missing_and_mistyped_columns(store):
    train_churn(store)
    bad = churn_frame(50, seed=1).drop(columns=["age"]).assign(monthly_charges=lambda d: d["monthly_charges"].astype(str))
    with pytest.raises(SchemaMismatch) as info:
        mlops_nb.predict("churn@production", bad, store=store)
    assert info.value.missing == ["age"]
    assert "monthly_charges is" in str(info.value) and "trained on float64" in str(info.value)
    assert [r for r in store.list_runs() if r["name"] == "score-churn"] == []  # nothing recorded


def test_cli_predict(store, tmp_path):
    train_churn(store)
    churn_frame(300, seed=4).to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(main, ["predict", "churn@production", "--input", str(tmp_path / "in.csv"),
                                       "--output", str(tmp_path / "out.parquet")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scored 300 rows with churn:1" in result.output
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 300
    churn_frame(10, seed=4).drop(columns="plan").to_csv(tmp_path / "bad.csv", index=False)
    result = CliRunner().invoke(main, ["predict", "churn@production", "--input", str(tmp_path / "bad.csv"),
                                       "--output", str(tmp_path / "x.csv")])  # fmt: skip
    assert result.exit_code == 1 and "missing column(s) plan" in result.output
    assert "Traceback" not in result.output


def test_unreadable_inputs_are_one_line_errors(store, tmp_path):
    train_churn(store)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    for path, message in [(tmp_path / "nope.csv", "does not exist"), (tmp_path / "x.json", "give a .parquet or .csv"),
                          (tmp_path / "broken.parquet", "Cannot read")]:  # fmt: skip
        with pytest.raises(mlops_nb.MlopsError, match=message):
            mlops_nb.predict("churn@production", path, store=store)
    with pytest.raises(mlops_nb.MlopsError, match="is not a valid alias"):
        mlops_nb.predict("churn@", churn_frame(5), store=store)
