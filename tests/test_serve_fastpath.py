"""The numpy route for linear models (mlops_nb.scoring.fastpath): the same answers as scikit-learn,
taken only when it is safe, and the server's answers through it (real uvicorn process, real HTTP)."""

from __future__ import annotations

import gc
import json
import warnings

import httpx
import numpy as np
import pandas as pd
import pytest
from scoring_support import train_churn
from test_serve import serving

import mlops_nb
from mlops_nb.scoring.fastpath import FastPath, _agrees, compile_fast
from mlops_nb.scoring.traffic import TrafficLog, load_traffic

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

COLUMNS = [f"f{i}" for i in range(6)]


def _data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(3, 2, (n, len(COLUMNS))), columns=COLUMNS)
    y = (X["f0"] - 0.5 * X["f3"] + rng.normal(0, 1, n) > 1.5).astype(int).to_numpy()
    return X, y


def _linear(kind: str = "logistic", **scaler):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    final = LogisticRegression(max_iter=1000) if kind == "logistic" else Ridge(alpha=0.3)
    return make_pipeline(StandardScaler(**scaler), final).fit(X, y if kind == "logistic" else X["f1"] * 2.0 - y)


def _own(model, X: np.ndarray, method: str) -> np.ndarray:
    """The model's own answer for the rows as the server parses them: a row-major array (scikit-learn's
    answers move by an ulp between row- and column-major copies of the same rows)."""
    X = np.ascontiguousarray(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the array has no feature names: the order is the fitted one
        return np.asarray(getattr(model, method)(X))


@pytest.mark.parametrize("scaler", [{}, {"with_mean": False}, {"with_std": False}])
def test_the_numpy_route_answers_exactly_as_scikit_learn(scaler):
    model = _linear(**scaler)
    fast = compile_fast(model, COLUMNS)
    assert isinstance(fast, FastPath)
    for n in (1, 3, 100, 1000):
        X = np.ascontiguousarray(_data(n, seed=n)[0].to_numpy())
        got = fast(X)
        assert np.array_equal(got["prediction"], _own(model, X, "predict"))
        assert np.array_equal(got["probability"], _own(model, X, "predict_proba")[:, 1])
        assert np.array_equal(X, _data(n, seed=n)[0].to_numpy())  # the caller's rows are not scaled in place
    ints = np.arange(12).reshape(2, 6)  # integer rows are scored as floats, as StandardScaler converts them
    assert np.array_equal(fast(ints)["probability"], _own(model, ints.astype(float), "predict_proba")[:, 1])
    ridge = _linear("ridge")
    X = np.ascontiguousarray(_data(50, seed=9)[0].to_numpy())
    assert np.array_equal(compile_fast(ridge, COLUMNS)(X)["prediction"], _own(ridge, X, "predict"))


def test_other_models_keep_the_general_route():
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from mlops_nb.monitoring.datasets import FEATURES, LABEL, churn_frame, churn_pipeline

    X, y = _data()
    assert compile_fast(_linear(), list(reversed(COLUMNS))) is None  # fed in another order than fitted
    assert compile_fast(DecisionTreeClassifier().fit(X, y), COLUMNS) is None
    assert compile_fast(LogisticRegression().fit(X, y % 3 + (X["f2"] > 3)), COLUMNS) is None  # 3 classes
    assert compile_fast(LogisticRegression().fit(X.to_numpy(), y), COLUMNS) is None  # fitted without names
    churn = churn_frame(300)
    assert compile_fast(churn_pipeline().fit(churn[FEATURES], churn[LABEL]), FEATURES) is None  # ColumnTransformer


def test_a_numpy_route_answering_differently_is_refused():
    model = _linear()
    fast = compile_fast(model, COLUMNS)
    off = FastPath(fast.scalers, fast.coef_t, fast.intercept + 1e-12, fast.classes)
    assert _agrees(fast, model, COLUMNS) and not _agrees(off, model, COLUMNS)


def test_kept_rows_of_the_numpy_route_are_logged_with_their_columns(store):
    log = TrafficLog("linear@production", store, 1.0, flush_every=3600).start()  # the writer child; flushed by hand
    try:
        rows = np.array([[1.0, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
        assert log.offer(rows, 3, columns=COLUMNS) and log.offer(np.arange(6).reshape(1, 6), 3, columns=COLUMNS)
        assert log.flush() == 3  # arrays only: sent to the child as Arrow columns built from them
        assert log.offer(rows[:1] * 10, 4, columns=COLUMNS) and log.offer(pd.DataFrame(rows[1:] * 10, columns=COLUMNS), 4)
        assert log.flush() == 2  # an array beside a frame (a request the general route scored): frames
        assert log.describe()["writer"] == "process" and log.dropped_rows == 0
    finally:
        log.close()
    back = load_traffic("served:linear@production", store=store).sort_values("served_at", kind="stable")
    expected = [*rows.tolist(), list(range(6)), *(rows * 10).tolist()]
    assert back[COLUMNS].to_numpy().tolist() == expected
    assert back["model_version"].tolist() == ["3", "3", "3", "4", "4"]


def test_the_server_freezes_its_startup_heap(store):
    import asyncio

    from mlops_nb.scoring.serve import ModelHolder, create_app

    train_churn(store)
    app = create_app(ModelHolder("churn@production", store=store))
    frozen: list[int] = []

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):  # what uvicorn runs before taking the first request
            frozen.append(gc.get_freeze_count())

    gc.unfreeze()
    try:
        asyncio.run(start_and_stop())
    finally:
        gc.unfreeze()
    assert frozen[0] > 1000  # the modules and the model: never walked by a collection again


@pytest.fixture
def linear_server(store, kernel_env):
    X, y = _data()
    with mlops_nb.track(name="train-linear", inputs={"train": X}, store=store):
        model = _linear()
        digest = mlops_nb.log_model(model, "model")
    mlops_nb.register(digest, name="linear", alias="production", store=store)
    with serving("linear@production", kernel_env) as url:
        yield url, model


def test_the_server_scores_numbers_through_the_numpy_route_and_everything_else_as_before(linear_server):
    url, model = linear_server
    assert httpx.get(f"{url}/version").json()["fast_path"] is True
    for n in (1, 100):
        X = _data(n, seed=n + 1)[0]
        r = httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": COLUMNS, "data": X.to_numpy().tolist()}})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == _own(model, X.to_numpy(), "predict").tolist()
        assert r.json()["probabilities"] == _own(model, X.to_numpy(), "predict_proba")[:, 1].tolist()
    X = _data(4, seed=5)[0]
    expected = model.predict_proba(X)[:, 1]
    others = [  # shapes the numpy route leaves to the general one: same answers
        {"dataframe_split": {"columns": list(reversed(COLUMNS)), "data": X[list(reversed(COLUMNS))].to_numpy().tolist()}},
        {"dataframe_split": {"data": X.to_numpy().tolist()}},
        {"dataframe_records": X.to_dict(orient="records")},
        {"inputs": X.to_numpy().tolist()},
    ]
    for body in others:
        r = httpx.post(f"{url}/invocations", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["probabilities"] == pytest.approx(expected.tolist(), rel=1e-12)
    text = X.to_numpy().tolist()
    text[0][2] = "high"
    r = httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": COLUMNS, "data": text}})
    assert r.status_code == 400 and "mistyped: f2 is" in r.json()["message"], r.text
    nan = X.to_numpy().tolist()
    nan[1][0] = float("nan")  # json: NaN; the numpy route leaves it to the model, which refuses it
    r = httpx.post(f"{url}/invocations", content=json.dumps({"dataframe_split": {"columns": COLUMNS, "data": nan}}),
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 400 and r.json()["message"] == "linear:1 cannot score these rows: Input X contains NaN.", r.text
    short = httpx.post(f"{url}/invocations", json={"dataframe_split": {"columns": COLUMNS[:-1], "data": [row[:-1] for row in X.to_numpy().tolist()]}})
    assert short.status_code == 400 and "missing column(s) f5" in short.json()["message"]
