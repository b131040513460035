"""Pictures of what the registry holds, as Vega-Lite: drawn by the notebook and the sidebar from one description.

Each function takes a store and returns JSON-ready dicts with a ``charts``
list (see :mod:`mlops_nb.charts.vega`); the server sends them to the sidebar
as they are, and :class:`Charts` displays them in a notebook.
"""

from .display import Chart, Charts
from .drift import badge, drift_charts
from .lineage import lineage_chart
from .models import model_charts
from .pipeline import infer_pipeline, pipeline_chart
from .run_detail import run_charts
from .runs import runs_charts

__all__ = [
    "Chart", "Charts", "badge", "drift_charts", "infer_pipeline", "lineage_chart", "model_charts", "pipeline_chart",
    "run_charts", "runs_charts", "show_drift", "show_model", "show_run", "show_runs",
]  # fmt: skip


def _store(store):
    from ..store import get_store

    return store or get_store()


def show_runs(filter: str | None = None, *, x: str | None = None, y: str | None = None, project: str | None = "*",  # noqa: A002
              store=None) -> Charts:  # fmt: skip
    """The runs charts (metric vs param, parallel coordinates, best runs, steps) of the runs matching ``filter``."""
    return Charts(runs_charts(_store(store), filter=filter, x=x, y=y, project=project)["charts"])


def show_run(run_id: str, *, baseline: str | None = None, store=None) -> Charts:
    """A run's metric histories (its comparison with the baseline is in :func:`run_charts`)."""
    return Charts(run_charts(_store(store), run_id, baseline=baseline)["charts"])


def show_model(name: str, *, store=None) -> Charts:
    """A registered model's metrics across versions, its aliases over time, and its champion/challenger races."""
    return Charts(model_charts(_store(store), name)["charts"])


def show_drift(check: int | None = None, *, monitor: str | None = None, store=None) -> Charts:
    """A saved drift check's histograms (default the newest) and drift over time."""
    return Charts(drift_charts(_store(store), check=check, monitor=monitor)["charts"])
