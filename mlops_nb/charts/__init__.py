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
    "run_charts", "runs_charts",
]  # fmt: skip
