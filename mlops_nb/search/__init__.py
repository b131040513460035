"""Run search: a small filter grammar executed in SQL (``mlops_nb.search_runs``)."""

from .grammar import Clause, Order, parse_filter, parse_order, quote
from .query import RunPage, count_runs, matching_runs, metric_keys, search_runs

__all__ = ["Clause", "Order", "RunPage", "count_runs", "matching_runs", "metric_keys", "parse_filter", "parse_order", "quote", "search_runs"]
