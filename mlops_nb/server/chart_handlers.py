"""Handlers of ``/mlops-nb/api/charts/…``: the Vega-Lite charts of :mod:`mlops_nb.charts`, as JSON.

The sidebar draws what these return with vega-embed; the notebook displays
the same dicts (``mlops_nb.charts.Charts``), so a chart is described once.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from .handlers import MlopsHandler, _NAME
from .views import BadRequest


def _charts():
    from .. import charts  # imported on the first chart request, not when the server starts

    return charts


class RunsChartsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            args = {k: self.get_query_argument(k, "").strip() or None for k in ("filter", "x", "y", "metric", "project")}
            await self.reply(_runs_charts, **args)

        await self.guarded(go)


def _runs_charts(store, *, filter, x, y, metric, project) -> dict[str, Any]:  # noqa: A002
    return _charts().runs_charts(store, filter=filter, x=x, y=y, metric=metric, project=project or "*")


class RunChartsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        baseline = self.get_query_argument("baseline", "").strip() or None
        await self.reply(lambda store: _charts().run_charts(store, run_id, baseline=baseline))


class ModelChartsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self.reply(lambda store: _charts().model_charts(store, name))


class DriftChartsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            check = self.get_query_argument("check", "").strip()
            if check and not check.isdigit():
                raise BadRequest(f"check must be a drift check id (a number), got {check!r}.")
            monitor = self.get_query_argument("monitor", "").strip() or None
            await self.reply(lambda store: _charts().drift_charts(store, check=int(check) if check else None, monitor=monitor))

        await self.guarded(go)


class LineageChartHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            ref = self.get_query_argument("ref", "").strip()
            if not ref:
                raise BadRequest("ref is required: a run id, data:DIGEST, model:NAME@ALIAS or model:NAME/VERSION.")
            await self.reply(lambda store: _charts().lineage_chart(store, ref))

        await self.guarded(go)


class PipelineChartHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            path = self.get_query_argument("notebook", "").strip()
            if not path or not path.endswith(".ipynb"):
                raise BadRequest("notebook must be the notebook's path below the server root, ending in .ipynb.")
            paths = self.mlops.notebook_candidates(path)
            await self.reply(lambda store: _charts().pipeline_chart(store, paths, title=path.rsplit("/", 1)[-1]))

        await self.guarded(go)


#: (pattern below /mlops-nb/api, handler)
chart_handlers: list[tuple[str, type[MlopsHandler]]] = [
    (r"charts/runs", RunsChartsHandler),
    (r"charts/runs/([0-9a-fA-F]{1,32})", RunChartsHandler),
    (rf"charts/models/{_NAME}", ModelChartsHandler),
    (r"charts/drift", DriftChartsHandler),
    (r"charts/lineage", LineageChartHandler),
    (r"charts/pipeline", PipelineChartHandler),
]
