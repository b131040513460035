"""Scoring with registered models: batch ``predict`` (recorded, schema- and drift-checked) and ``serve``."""

from .model import ScoringModel, load_scoring_model
from .predict import ScoringResult, predict, read_table, write_table

__all__ = ["ScoringModel", "ScoringResult", "load_scoring_model", "predict", "read_table", "serve", "write_table"]


def serve(*args, **kwargs):
    """Serve a model over HTTP (see :func:`mlops_nb.scoring.serve.serve`); needs the serve extra."""
    from .serve import serve as _serve

    return _serve(*args, **kwargs)
