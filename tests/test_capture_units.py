"""The pieces under the kernel tests: data flow of a cell, metric-like calls, in-place changes."""

from __future__ import annotations

import ast

import pytest

from mlops_nb.tracking.capture import analyze_source
from mlops_nb.tracking.cells import contained
from mlops_nb.tracking.shown_metrics import metric_call_label
from mlops_nb.tracking.staleness import cell_flow
from mlops_nb.tracking.hooks import track_arguments


def test_cell_flow_follows_statements_and_in_place_changes():
    flow = cell_flow("X = df.dropna()\ny = X.sum() + k\ndf['r'] = other\nclf.fit(X, target)\nimport numpy as np\n")
    assert flow["X"] == {"df"} and flow["y"] == {"df", "k"}  # through X, to where X came from
    assert flow["df"] == {"df", "other"}  # changed in place: keeps its origin
    assert flow["clf"] == {"clf", "df", "target"} and flow["np"] == frozenset()


@pytest.mark.parametrize(
    "expression,label",
    [("accuracy_score(y, y_model)", "accuracy_score"), ("metrics.mean_squared_error(y, p)", "mean_squared_error"),
     ("clf.score(X, y)", "clf.score"), ("search.best_estimator_.score(X, y)", "search.best_estimator_.score"),
     ("cross_val_score(m, X, y)", "cross_val_score"), ("scores.mean()", "scores.mean"), ("cv_scores.std()", "cv_scores.std"),
     ("log_loss(y, p)", "log_loss"), ("df.mean()", None), ("model.predict(X)", None), ("score", None)],
)  # fmt: skip
def test_metric_like_calls(expression, label):
    assert metric_call_label(ast.parse(expression, mode="eval").body) == label


def test_visible_in_place_changes():
    names = analyze_source("df['a'] = 1\narr += 1\nframe.drop(columns='x', inplace=True)\nv.sort()\nnp.add(a, b, out=c)\nkept = df2.copy()")
    assert names.mutated == {"df", "arr", "frame", "v", "c"}


@pytest.mark.parametrize(
    "line,args", [("%%mlops track", ""), ("%%mlops track --name a --tag k=v\n", "--name a --tag k=v"),
                  ("%%mlops trackx", None), ("%%mlops runs", None), ("%mlops track", None)],
)  # fmt: skip
def test_track_line(line, args):
    assert track_arguments(line) == args


class _Hooks:
    """A cell-event owner whose hook fails the way a bug of ours would."""

    def __init__(self) -> None:
        self.failed: list[Exception] = []

    @contained
    def post_run_cell(self, result=None) -> None:
        {}["missing"]  # noqa: B018

    def _fail(self, exc: Exception) -> None:
        self.failed.append(exc)


def test_an_error_of_ours_in_a_cell_event_is_one_line_and_closes_the_run(capsys, monkeypatch):
    hooks = _Hooks()
    monkeypatch.delenv("MLOPS_NB_DEBUG", raising=False)
    hooks.post_run_cell(None)  # IPython would print its callback traceback if this raised
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mlops: this cell was not recorded: KeyError: 'missing'")
    assert "MLOPS_NB_DEBUG=1" in err and [type(e) for e in hooks.failed] == [KeyError]
    monkeypatch.setenv("MLOPS_NB_DEBUG", "1")
    with pytest.raises(KeyError):
        hooks.post_run_cell(None)
