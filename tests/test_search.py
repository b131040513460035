"""Run search: the grammar, its errors, and the SQL it runs on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import time
import uuid

import pytest

import mlops_nb
from mlops_nb import config
from mlops_nb.errors import SearchError
from mlops_nb.search import Clause, count_runs, parse_filter, parse_order, search_runs
from mlops_nb.store import SqlStore


# ---- grammar ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, clause",
    [
        ("metrics.accuracy > 0.9", Clause("metrics", "accuracy", ">", 0.9)),
        ("metrics.loss <= 1", Clause("metrics", "loss", "<=", 1)),
        ("metrics.loss >= 1e-3", Clause("metrics", "loss", ">=", 0.001)),
        ("metrics.loss < .5", Clause("metrics", "loss", "<", 0.5)),
        ("params.C = 1", Clause("params", "C", "=", 1)),
        ("params.solver != 'lbfgs'", Clause("params", "solver", "!=", "lbfgs")),
        ("params.solver <> \"lbfgs\"", Clause("params", "solver", "!=", "lbfgs")),
        ("params.fit_intercept = true", Clause("params", "fit_intercept", "=", True)),
        ("tags.owner = 'ana'", Clause("tags", "owner", "=", "ana")),
        ("status = 'finished'", Clause("attribute", "status", "=", "finished")),
        ("attributes.status = 'failed'", Clause("attribute", "status", "=", "failed")),
        ("name like 'train%'", Clause("attribute", "name", "like", "train%")),
        ("name ILIKE 'TRAIN%'", Clause("attribute", "name", "ilike", "TRAIN%")),
        ("status in ('finished', 'failed')", Clause("attribute", "status", "in", ("finished", "failed"))),
        ("params.C not in (1, 10)", Clause("params", "C", "not in", (1, 10))),
        ("metrics.f1 is null", Clause("metrics", "f1", "is null")),
        ("tags.owner is not null", Clause("tags", "owner", "is not null")),
        ("metrics.`f1 score` > 0.5", Clause("metrics", "f1 score", ">", 0.5)),
        ("tags.note = 'it\\'s'", Clause("tags", "note", "=", "it's")),
        ("duration < 2.5", Clause("attribute", "duration", "<", 2.5)),
    ],
)
def test_each_operator_parses(text, clause):
    assert parse_filter(text) == [clause]


def test_clauses_join_with_and_in_any_case():
    clauses = parse_filter("metrics.accuracy > 0.9 and params.C = 1 AND tags.owner = 'ana' and status = 'finished'")
    assert [c.kind for c in clauses] == ["metrics", "params", "tags", "attribute"]
    assert parse_filter("") == [] and parse_filter(None) == []


@pytest.mark.parametrize(
    "text, says",
    [
        ("metrics.accuracy >", "ends too early"),
        ("metrics.accuracy ~ 3", "Cannot read the filter at position 17"),
        ("metrics.accuracy between 1", "Unknown operator 'between' after metrics.accuracy: use =, !=, <"),
        ("metrics.accuracy = 'high'", "metrics.accuracy is a number"),
        ("metrics.accuracy like '0.9%'", "metrics.accuracy is a number"),
        ("tags.owner = 3", "Tags are text: quote the value"),
        ("colour = 'red'", "Unknown run attribute 'colour': use one of"),
        ("metric.acc > 1", "Unknown field 'metric.acc'"),
        ("metrics. > 1", "names no key"),
        ("status = finished", "'finished' is not a value: quote strings"),
        ("status = 'a' or status = 'b'", "'or' is not supported"),
        ("status = 'a' status = 'b'", "Expected 'and' between clauses"),
        ("status = 'a' and", "ends with 'and'"),
        ("status in 'a'", "in needs a parenthesised list"),
        ("status in ('a', 'b'", "not closed"),
        ("status is 3", "Expected 'is null' or 'is not null'"),
        ("name like 3", "like needs a quoted pattern"),
        ("start_time > 'yesterday'", "start_time is a number"),
        ("params.C in (1, 'a')", "do not mix numbers and strings"),
    ],
)
def test_bad_filters_say_what_is_wrong(store, text, says):
    with pytest.raises(SearchError) as info:
        search_runs(text, store=store)
    assert says in str(info.value)
    assert isinstance(info.value, mlops_nb.MlopsError)


def test_order_by_parses_and_rejects():
    orders = parse_order(["metrics.accuracy desc", "start_time", "params.C ASC"])
    assert [(o.kind, o.key, o.descending) for o in orders] == [
        ("metrics", "accuracy", True), ("attribute", "start_time", False), ("params", "C", False)
    ]  # fmt: skip
    for bad, says in [("metrics.acc down", "Cannot read order_by"), ("tags.owner", "Ordering by a tag"), ("colour", "Unknown run attribute")]:
        with pytest.raises(SearchError, match=says):
            parse_order([bad])


# ---- SQL against real stores ---------------------------------------------------------------
def _record(store: SqlStore, *, name, project="default", status="finished", params=None, metrics=None,
            tags=None, start=None, steps=None) -> str:  # fmt: skip
    run_id = uuid.uuid4().hex
    store.start_run(run_id, project, name=name, start_time=start or time.time(), tags=tags or {})
    stamp = time.time()
    rows = [(k, v, None, stamp) for k, v in (metrics or {}).items()]
    rows += [(k, v, i, stamp) for k, values in (steps or {}).items() for i, v in enumerate(values)]
    store.finish_run(run_id, status=status, params=params or {}, metrics=rows, duration=1.0)
    return run_id


@pytest.fixture
def runs_store(db_url, tmp_path, mlops_home):
    store = SqlStore(db_url, str(tmp_path / "artifacts"))
    base = 1_700_000_000.0
    ids = {
        "a": _record(store, name="train-a", params={"C": 1, "solver": "lbfgs", "fit_intercept": True},
                     metrics={"accuracy": 0.95}, tags={"owner": "ana"}, start=base + 1),
        "b": _record(store, name="train-b", params={"C": 10, "solver": "saga", "fit_intercept": False},
                     metrics={"accuracy": 0.91}, tags={"owner": "bob"}, start=base + 2),
        "c": _record(store, name="train-c", params={"C": 1.0, "solver": "lbfgs", "penalty": None},
                     metrics={"accuracy": 0.85}, tags={"owner": "ana"}, start=base + 3,
                     steps={"loss": [0.9, 0.5, 0.2]}),
        "d": _record(store, name="broken", status="failed", params={"C": 1}, tags={"owner": "ana"}, start=base + 4),
        "e": _record(store, name="other-project", project="quickstart", params={"C": 1},
                     metrics={"accuracy": 0.99}, tags={"owner": "ana"}, start=base + 5),
    }  # fmt: skip
    yield store, ids
    store.close()


def _ids(page) -> list[str]:
    return [r["id"] for r in page]


def test_the_issue_example(runs_store):
    store, ids = runs_store
    page = search_runs(
        "metrics.accuracy > 0.9 and params.C = 1 and tags.owner = 'ana' and status = 'finished'",
        order_by=["metrics.accuracy desc"], max_results=10, store=store,
    )  # fmt: skip
    assert _ids(page) == [ids["a"]]  # e is 0.99 but in another project
    run = page[0]
    assert run["params"] == {"C": 1, "solver": "lbfgs", "fit_intercept": True}  # typed
    assert run["metrics"] == {"accuracy": 0.95} and run["tags"] == {"owner": "ana"}
    assert run["project"] == "default" and run["run_id"] == ids["a"]
    assert page.next_page_token is None


def test_filters_by_type(runs_store):
    store, ids = runs_store
    s = lambda f, **kw: set(_ids(search_runs(f, store=store, **kw)))  # noqa: E731
    assert s("params.C = 1") == {ids["a"], ids["c"], ids["d"]}  # 1 and 1.0 are the same number
    assert s("params.C > 1") == {ids["b"]}
    assert s("params.C in (10, 100)") == {ids["b"]}
    assert s("params.C not in (10)") == {ids["a"], ids["c"], ids["d"]}
    assert s("params.solver = 'lbfgs'") == {ids["a"], ids["c"]}
    assert s("params.C = '1'") == {ids["a"], ids["d"]}  # quoted: the text as recorded (1.0 is '1.0')
    assert s("params.solver > 'lbfgs'") == {ids["b"]}  # text order, strings only
    assert s("params.solver like 'sa%'") == {ids["b"]}
    assert s("params.solver ilike 'LB%'") == {ids["a"], ids["c"]}
    assert s("params.fit_intercept = true") == {ids["a"]}
    assert s("params.fit_intercept = false") == {ids["b"]}
    assert s("params.penalty is null") == {ids["a"], ids["b"], ids["c"], ids["d"]}  # None counts as null
    assert s("params.penalty is not null") == set()
    assert s("metrics.accuracy >= 0.91") == {ids["a"], ids["b"]}
    assert s("metrics.accuracy != 0.95") == {ids["b"], ids["c"]}
    assert s("metrics.accuracy is null") == {ids["d"]}
    assert s("metrics.loss < 0.3") == {ids["c"]}  # the last value of a stepped metric
    assert s("tags.owner = 'ana'") == {ids["a"], ids["c"], ids["d"]}
    assert s("tags.owner != 'ana'") == {ids["b"]}
    assert s("status = 'failed'") == {ids["d"]}
    assert s("name in ('train-a', 'broken')") == {ids["a"], ids["d"]}
    assert s(f"run_id like '{ids['b'][:6]}%'") == {ids["b"]}
    assert s("start_time > 1700000002.5") == {ids["c"], ids["d"]}
    assert s("project = 'quickstart'", project="*") == {ids["e"]}
    assert s("user is not null") == {ids["a"], ids["b"], ids["c"], ids["d"]}


def test_ordering(runs_store):
    store, ids = runs_store
    order = lambda o: _ids(search_runs(order_by=o, store=store))  # noqa: E731
    assert order(None) == [ids["d"], ids["c"], ids["b"], ids["a"]]  # newest first
    assert order(["metrics.accuracy desc"]) == [ids["a"], ids["b"], ids["c"], ids["d"]]  # missing last
    assert order(["metrics.accuracy"]) == [ids["c"], ids["b"], ids["a"], ids["d"]]
    assert order(["params.C desc", "name"]) == [ids["b"], ids["d"], ids["a"], ids["c"]]
    assert order(["name asc"]) == [ids["d"], ids["a"], ids["b"], ids["c"]]


def test_pagination_tokens(runs_store):
    store, ids = runs_store
    seen, token = [], None
    while True:
        page = search_runs("status != 'running'", order_by=["start_time"], max_results=2, page_token=token, store=store)
        seen += _ids(page)
        token = page.next_page_token
        if token is None:
            break
    assert seen == [ids["a"], ids["b"], ids["c"], ids["d"]]
    first = search_runs(max_results=1, store=store)
    with pytest.raises(SearchError, match="different search"):
        search_runs("status = 'finished'", max_results=1, page_token=first.next_page_token, store=store)
    with pytest.raises(SearchError, match="not one this search returned"):
        search_runs(max_results=1, page_token="garbage", store=store)
    with pytest.raises(SearchError, match="max_results"):
        search_runs(max_results=0, store=store)
    assert count_runs("params.C = 1", store=store) == 3


def test_project_filtering(runs_store):
    store, ids = runs_store
    assert ids["e"] not in _ids(search_runs(store=store))
    assert _ids(search_runs(project="quickstart", store=store)) == [ids["e"]]
    assert len(search_runs(project="*", store=store)) == 5
    config.init(project="quickstart")
    assert _ids(search_runs(store=store)) == [ids["e"]]
    # runs() defaults to the current project too, "*" lists all
    assert list(mlops_nb.runs(store=store)["run_id"]) == [ids["e"]]
    assert len(mlops_nb.runs(project="*", store=store)) == 5


def test_page_dataframe(runs_store):
    store, ids = runs_store
    page = search_runs(order_by=["metrics.accuracy desc"], store=store)
    frame = page.df
    assert list(frame["run_id"]) == _ids(page)
    assert frame.loc[0, "metrics.accuracy"] == 0.95 and frame.loc[0, "params.solver"] == "lbfgs"
    assert "tags.owner" in frame


def test_tracked_runs_are_searchable(store):
    for c in (0.1, 1.0):
        with mlops_nb.track(name="sweep", tags={"owner": "ana"}):
            mlops_nb.log_param("C", c)
            mlops_nb.log_metric("accuracy", 0.8 + c / 10)
    page = mlops_nb.search_runs("params.C >= 1 and tags.owner = 'ana'", order_by="metrics.accuracy desc")
    assert [r["params"]["C"] for r in page] == [1.0]
    assert page[0]["metrics"]["accuracy"] == pytest.approx(0.9)


def test_cli_runs_filter_order_and_projects(store):
    from click.testing import CliRunner

    from mlops_nb.cli import main

    ids = {C: _record(store, name=f"c{C}", params={"C": C}, metrics={"accuracy": 0.8 + C / 100}, start=1e9 + C) for C in (1, 2, 3)}
    other = _record(store, name="elsewhere", project="quickstart", metrics={"accuracy": 0.99})
    invoke = lambda *args: CliRunner().invoke(main, list(args))  # noqa: E731
    listing = invoke("runs").output
    assert all(i[:8] in listing for i in ids.values()) and other[:8] not in listing  # the current project only
    assert other[:8] in invoke("runs", "--all-projects").output
    assert other[:8] in invoke("--project", "quickstart", "runs").output
    config.init(project="default")  # the CLI's --project stays set in this process
    lines = invoke("runs", "--filter", "params.C >= 2", "--order-by", "metrics.accuracy asc").output.splitlines()
    assert [line[:8] for line in lines[1:]] == [ids[2][:8], ids[3][:8]]
    assert "(the first 1 of 3 runs" in invoke("runs", "--last", "1").output
    assert "no runs match" in invoke("runs", "--filter", "params.C > 10").output
    bad = invoke("runs", "--filter", "params.C >")
    assert bad.exit_code == 1 and bad.output.startswith("Error: The filter ends too early") and "Traceback" not in bad.output


def test_sort_metric_in_the_filter_walks_its_index_with_the_same_answer(runs_store):
    store, ids = runs_store
    walked, token = [], None
    while True:  # the filter requires the sort metric: the search is driven by its index
        page = search_runs("metrics.accuracy >= 0.85", order_by=["metrics.accuracy desc"], max_results=1, page_token=token, store=store)
        walked += _ids(page)
        if not (token := page.next_page_token):
            break
    sorted_all = _ids(search_runs(order_by=["metrics.accuracy desc"], store=store))
    assert walked == sorted_all[:3] == [ids["a"], ids["b"], ids["c"]]
    assert _ids(search_runs("metrics.accuracy != 0.91", order_by=["metrics.accuracy asc"], store=store)) == [ids["c"], ids["a"]]


def test_metric_keys_per_project(runs_store):
    from mlops_nb.search import metric_keys

    store, _ids_ = runs_store
    assert metric_keys(store=store) == ["accuracy", "loss"]
    _record(store, name="x", project="quickstart", metrics={"rmse": 1.0})
    assert metric_keys(project="quickstart", store=store) == ["accuracy", "rmse"]
    assert metric_keys(project="*", store=store) == ["accuracy", "loss", "rmse"]
    assert metric_keys(project="nobody", store=store) == []


def test_errors_point_at_the_offending_token():
    with pytest.raises(SearchError) as info:
        parse_filter("metrics.accuracy > 0.9 and params.C between 1")
    assert info.value.position == 36 and "(at position 36: 'between 1')" in str(info.value)
    with pytest.raises(SearchError) as info:
        parse_filter("status = 'finished' and tags.owner = 3")
    assert info.value.position == 24 and "quote the value" in str(info.value)
    with pytest.raises(SearchError, match=r"\(at the end\)"):
        parse_filter("metrics.x >")


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_pages_across_runs_without_the_sort_metric(runs_store, size):
    store, ids = runs_store
    _record(store, name="no-metric-2", params={"C": 1}, start=1_600_000_000.0)
    walked, token = [], None
    while True:
        page = search_runs(order_by=["metrics.accuracy desc"], max_results=size, page_token=token, store=store)
        assert len(page) <= size
        walked += [r["name"] for r in page]
        if not (token := page.next_page_token):
            break
    # with the metric by value, then the runs without it newest first
    assert walked == ["train-a", "train-b", "train-c", "broken", "no-metric-2"]
