"""Run search: a small filter grammar executed in SQL (``mlops_nb.search_runs``)."""

from .grammar import Clause, Order, parse_filter, parse_order
from .query import RunPage, count_runs, search_runs

__all__ = ["Clause", "Order", "RunPage", "count_runs", "parse_filter", "parse_order", "search_runs"]
