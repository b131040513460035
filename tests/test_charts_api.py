"""The chart endpoints of the sidebar's API through a real jupyter_server, on the registry the sidebar tests use."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from sidebar_support import jp_server_config, registry  # noqa: F401  (fixtures)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def api(jp_fetch, registry):
    async def call(*parts, **kwargs):
        response = await jp_fetch("mlops-nb", "api", "charts", *parts, **kwargs)
        return json.loads(response.body)

    return call


async def refused(call) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await call
    return info.value.code, json.loads(info.value.response.body)["error"]


def ids(answer: dict) -> list[str]:
    for chart in answer["charts"]:
        assert chart["spec"]["$schema"].endswith("vega-lite/v5.json") and isinstance(chart["marks"], int)
    return [c["id"] for c in answer["charts"]]


async def test_runs_charts_follow_the_filter_and_axes(api, registry):
    answer = await api("runs")
    assert ids(answer) == ["scatter", "parallel", "bars"] and answer["total"] == 4 and answer["x"] == "C"
    narrowed = await api("runs", params={"filter": "metrics.accuracy > 0.95", "x": "clf.C", "y": "accuracy"})
    assert narrowed["total"] == 1 and narrowed["x"] == "clf.C"
    (point,) = narrowed["charts"][0]["spec"]["data"]["values"]
    assert point["run_id"] == registry["runs"]["train-C1.0"]
    code, message = await refused(api("runs", params={"filter": "metrics.accuracy >>> 1"}))
    assert code == 400 and "accuracy" in message


async def test_run_model_drift_lineage_and_pipeline_charts(api, registry):
    run = await api("runs", registry["runs"]["train-C1.0"])
    assert ids(run) == ["history"] and run["baseline"]["run_id"] == registry["runs"]["prepare"]
    model = await api("models", "iris")
    assert ids(model) == ["trend", "aliases"]
    drift = await api("drift", params={"check": str(registry["drift_id"])})
    assert ids(drift) == ["histograms", "timeline"] and drift["badge"]["text"] == "drift detected (1 of 2 columns drifted)"
    lineage = await api("lineage", params={"ref": "model:iris@production"})
    assert ids(lineage) == ["lineage"] and {"alias", "registered", "model", "run", "data"} <= {n["kind"] for n in lineage["nodes"]}
    pipeline = await api("pipeline", params={"notebook": "analysis.ipynb"})
    assert pipeline["cells"] == 3 and pipeline["charts"][0]["marks"] == len(pipeline["nodes"])


async def test_bad_chart_requests_are_clear(api, registry):
    assert (await refused(api("models", "nosuch")))[0] == 404
    code, message = await refused(api("drift", params={"check": "x1"}))
    assert code == 400 and "drift check id" in message
    assert (await refused(api("drift", params={"check": "999"})))[0] == 404
    code, message = await refused(api("lineage"))
    assert code == 400 and "ref is required" in message
    code, message = await refused(api("pipeline", params={"notebook": "x.txt"}))
    assert code == 400 and ".ipynb" in message
