"""The scoring shortcuts give exactly what the model itself says: a pipeline's transforms run once,
plain numbers go to an estimator fitted on these very column names, everything else the general way."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_nb.errors import SchemaMismatch
from mlops_nb.monitoring.datasets import FEATURES, LABEL, churn_frame, churn_pipeline
from mlops_nb.scoring.model import ScoringModel, _number_matrix
from mlops_nb.scoring.serve import parse_payload


class _Version:
    ref, name, version, digest = "m:1", "m", 1, "0" * 64


def _scorer(model, frame: pd.DataFrame) -> ScoringModel:
    return ScoringModel(_Version(), model, {str(c): str(d) for c, d in frame.dtypes.items()}, None)


def _expect_same(model, frame: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shortcut must not leave sklearn's feature-name warning behind
        out = _scorer(model, frame).predict(frame)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(frame))
    np.testing.assert_allclose(out["probability"].to_numpy(), model.predict_proba(frame)[:, 1], rtol=0, atol=1e-12)
    return out


@pytest.mark.parametrize("rows", [1, 7, 300])
def test_numeric_pipelines_and_bare_estimators_score_as_the_model_does(rows):
    X, y = make_classification(600, 12, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(12)])
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    assert _number_matrix(pipeline, frame) is not None  # the shortcut is taken here
    _expect_same(pipeline, frame.head(rows))
    _expect_same(LogisticRegression().fit(frame, y), frame.head(rows))
    _expect_same(RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, y), frame.tail(rows))


def test_columns_picked_by_name_take_the_general_way():
    data = churn_frame(500, seed=3)
    model = churn_pipeline().fit(data[FEATURES], data[LABEL])
    assert _number_matrix(model, data[FEATURES]) is None  # a ColumnTransformer picks columns by name
    _expect_same(model, data[FEATURES].head(20))
    shuffled = data[FEATURES[::-1]].head(5)  # columns in another order are put back in training order
    out = _scorer(model, data[FEATURES]).predict(shuffled)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), model.predict(data[FEATURES].head(5)))


def test_numbers_from_json_rows_and_other_payloads_parse_to_the_same_frame():
    columns = ["a", "b", "c"]
    numbers = parse_payload({"dataframe_split": {"columns": columns, "data": [[1, 2.5, 3], [4, 5.0, 6]]}}, columns)
    assert numbers.to_numpy().tolist() == [[1, 2.5, 3], [4, 5.0, 6]] and numbers.columns.tolist() == columns
    mixed = parse_payload({"dataframe_split": {"columns": columns, "data": [[1, "x", None]]}}, columns)
    assert mixed.iloc[0].tolist()[:2] == [1, "x"] and mixed["b"].dtype != np.float64  # text stays text
    records = parse_payload({"dataframe_records": [{"a": 1, "b": 2.5, "c": 3}]}, columns)
    assert records.to_numpy().tolist() == [[1, 2.5, 3]]
    X, y = make_classification(100, 3, n_informative=2, n_redundant=0, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(pd.DataFrame(X, columns=columns), y)
    scorer = _scorer(model, pd.DataFrame(X, columns=columns))
    with pytest.raises(SchemaMismatch, match="mistyped: b is"):
        scorer.predict(mixed)
