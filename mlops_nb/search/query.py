"""Run search executed in SQL: filters on indexed tables, ordering, offset pages."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, or_, select

from ..errors import SearchError
from ..store import schema as t
from ..store.engine import read_transaction
from ..store.queries import attach_run_extras
from .grammar import Clause, Order, parse_filter, parse_order

if TYPE_CHECKING:
    import pandas as pd

    from ..store import SqlStore

MAX_RESULTS = 50_000
_ATTR_COLUMNS = {
    "status": t.runs.c.status, "name": t.runs.c.name, "run_id": t.runs.c.id, "start_time": t.runs.c.start_time,
    "end_time": t.runs.c.end_time, "duration": t.runs.c.duration, "user": t.runs.c.user,
    "notebook_path": t.runs.c.notebook_path, "project": t.projects.c.name, "git_commit": t.runs.c.git_commit,
    "job_run_id": t.runs.c.job_run_id, "batch_id": t.runs.c.batch_id, "execution_count": t.runs.c.execution_count,
}  # fmt: skip


class RunPage(list):
    """One page of runs (dicts with ``params``, ``metrics``, ``tags``); ``next_page_token`` for the next."""

    def __init__(self, runs: Iterable[dict[str, Any]], next_page_token: str | None, total: int | None = None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token
        self.total = total

    @property
    def df(self) -> pd.DataFrame:
        """The page as a DataFrame: run columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
        from ..tracking.run import runs_frame

        return runs_frame(list(self))

    def __repr__(self) -> str:
        more = f", next_page_token={self.next_page_token!r}" if self.next_page_token else ""
        return f"RunPage({len(self)} runs{more})"


def _compare(column, op: str, value: Any):
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "like":
        return column.like(value)
    if op == "ilike":
        return func.lower(column).like(str(value).lower())
    if op == "in":
        return column.in_(list(value))
    if op == "not in":
        return column.not_in(list(value))
    if op == "is null":
        return column.is_(None)
    if op == "is not null":
        return column.is_not(None)
    raise SearchError(f"Unknown operator {op!r}.", operator=op)


def _param_condition(clause: Clause):
    p = t.params
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    if clause.op in ("is null", "is not null"):
        return None  # handled as existence of the key
    if all(isinstance(v, bool) for v in values):
        nums = tuple(float(v) for v in values)
        return and_(p.c.value_type == "bool", _compare(p.c.value_num, clause.op, nums if isinstance(clause.value, tuple) else nums[0]))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return and_(p.c.value_num.is_not(None), _compare(p.c.value_num, clause.op, clause.value))
    if all(isinstance(v, str) for v in values):
        if clause.op in ("=", "!=", "in", "not in", "like", "ilike"):
            # a quoted value compares the text as recorded, whatever the type ('1' finds C=1, as in MLflow)
            return and_(p.c.value.is_not(None), _compare(p.c.value, clause.op, clause.value))
        return and_(or_(p.c.value_type == "str", p.c.value_type.is_(None)), _compare(p.c.value, clause.op, clause.value))
    raise SearchError(f"params.{clause.key}: do not mix numbers and strings in one list.", field=f"params.{clause.key}")


def _condition(clause: Clause):
    if clause.kind == "attribute":
        return _compare(_ATTR_COLUMNS[clause.key], clause.op, clause.value)
    table, value_col = {
        "metrics": (t.latest_metrics, t.latest_metrics.c.value),
        "params": (t.params, None),
        "tags": (t.run_tags, t.run_tags.c.value),
    }[clause.kind]
    has_key = table.c.key == clause.key
    if clause.kind == "params":  # a param recorded as None counts as null
        has_key = and_(has_key, t.params.c.value_type.is_distinct_from("null"))
    # Correlated EXISTS: probed through the (run_id, key) primary key for each candidate run,
    # so a search that walks an index in order stops after one page.
    of_run = table.c.run_id == t.runs.c.id
    if clause.op == "is null":
        return ~select(table.c.run_id).where(of_run, has_key).exists()
    if clause.op == "is not null":
        return select(table.c.run_id).where(of_run, has_key).exists()
    condition = _param_condition(clause) if clause.kind == "params" else _compare(value_col, clause.op, clause.value)
    return select(table.c.run_id).where(of_run, has_key, condition).exists()


#: Operators that no run without the metric satisfies.
_NEEDS_VALUE = {"=", "!=", "<", "<=", ">", ">=", "in", "not in", "is not null"}


def _driving_metric(clauses: list[Clause], orders: list[Order]) -> list[Clause] | None:
    """Clauses on the first sort metric when the filter requires that metric.

    The search then walks the metric's (key, value) index in sort order and stops after
    one page, instead of sorting every matching run.
    """
    if not orders or orders[0].kind != "metrics":
        return None
    on_key = [c for c in clauses if c.kind == "metrics" and c.key == orders[0].key]
    return on_key if any(c.op in _NEEDS_VALUE for c in on_key) else None


def _encode_token(offset: int, signature: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "s": signature}).encode()).decode()


def _decode_token(token: str, signature: str) -> int:
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, sig = int(body["o"]), body["s"]
    except Exception:
        raise SearchError("page_token is not one this search returned: pass next_page_token unchanged.", page_token=token) from None
    if sig != signature:
        raise SearchError("page_token belongs to a different search (filter, order or project changed): start again without it.", page_token=token)
    return offset


def search_runs(
    filter: str | None = None,  # noqa: A002 - the name users know from MLflow
    *,
    order_by: list[str] | str | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    project: str | None = None,
    store: SqlStore | None = None,
) -> RunPage:
    """Runs matching ``filter``, ordered, one page at a time; executed in SQL.

    Parameters
    ----------
    filter : str, optional
        E.g. ``"metrics.accuracy > 0.9 and params.C = 1 and tags.owner = 'ana' and status = 'finished'"``
        (see :mod:`mlops_nb.search.grammar`).
    order_by : list of str, optional
        E.g. ``["metrics.accuracy desc"]``; runs without the key come last.  Default newest first.
    max_results : int
        Page size (at most 50,000).
    page_token : str, optional
        ``next_page_token`` of the previous page.
    project : str, optional
        Only this project; default the current project (``%mlops init --project``); ``"*"`` for all.
    """
    from .. import config
    from ..store import get_store

    if not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
        raise SearchError(f"max_results must be between 1 and {MAX_RESULTS}, not {max_results!r}.", max_results=max_results)
    clauses = parse_filter(filter)
    orders = parse_order(order_by)
    store = store or get_store()
    project = config.project_name(project) if project != "*" else None
    signature = hashlib.sha256(json.dumps([filter, order_by, project]).encode()).hexdigest()[:16]
    offset = _decode_token(page_token, signature) if page_token else 0

    with read_transaction(store.engine) as conn:
        if orders and orders[0].kind == "metrics" and _driving_metric(clauses, orders) is None:
            # Runs with the sort metric first, walked in its index order, then the runs without it:
            # two index-driven queries instead of sorting every run.
            key = orders[0].key
            rows = _page(conn, [*clauses, Clause("metrics", key, "is not null")], orders, project, offset, max_results + 1)
            if len(rows) <= max_results:
                if rows or offset == 0:
                    n_with = offset + len(rows)
                else:
                    n_with = conn.execute(_count_query([*clauses, Clause("metrics", key, "is not null")], project)).scalar_one()
                rows += _page(conn, [*clauses, Clause("metrics", key, "is null")], orders[1:], project,
                              max(0, offset - n_with), max_results + 1 - len(rows))  # fmt: skip
        else:
            rows = _page(conn, clauses, orders, project, offset, max_results + 1)
        more = len(rows) > max_results
        rows = rows[:max_results]
        _attach(conn, rows)
    token = _encode_token(offset + max_results, signature) if more else None
    return RunPage(rows, token)


def _page(conn, clauses: list[Clause], orders: list[Order], project: str | None, offset: int, limit: int) -> list[dict[str, Any]]:
    """Rows of the runs matching ``clauses`` in ``orders``, ``limit`` from ``offset``."""
    query = select(t.runs, t.projects.c.name.label("project"))
    driving = _driving_metric(clauses, orders)
    if driving is not None:
        drive = t.latest_metrics.alias("drive")
        query = query.select_from(drive.join(t.runs, t.runs.c.id == drive.c.run_id)).where(drive.c.key == orders[0].key)
        for clause in driving:
            query = query.where(_compare(drive.c.value, clause.op, clause.value))
        clauses = [c for c in clauses if c not in driving]
    query = query.join(t.projects, t.projects.c.id == t.runs.c.project_id)
    if project is not None:
        query = query.where(t.projects.c.name == project)
    for clause in clauses:
        query = query.where(_condition(clause))
    query = _ordered(query, orders, drive.c.value if driving is not None else None)
    return [dict(r) for r in conn.execute(query.limit(limit).offset(offset)).mappings()]


def _count_query(clauses: list[Clause], project: str | None):
    query = select(func.count()).select_from(t.runs.join(t.projects, t.projects.c.id == t.runs.c.project_id))
    if project is not None:
        query = query.where(t.projects.c.name == project)
    for clause in clauses:
        query = query.where(_condition(clause))
    return query


def _ordered(query, orders: list[Order], driven=None):
    terms = []
    if driven is not None:  # the first order is the driving metric: no run lacks it
        terms.append(driven.desc() if orders[0].descending else driven.asc())
    for i, order in enumerate(orders):
        if driven is not None and i == 0:
            continue
        if order.kind == "attribute":
            column = _ATTR_COLUMNS[order.key]
        elif order.kind == "metrics":
            alias = t.latest_metrics.alias(f"order_m{i}")
            query = query.outerjoin(alias, and_(alias.c.run_id == t.runs.c.id, alias.c.key == order.key))
            column = alias.c.value
        else:
            alias = t.params.alias(f"order_p{i}")
            query = query.outerjoin(alias, and_(alias.c.run_id == t.runs.c.id, alias.c.key == order.key))
            # numbers by value first, then text alphabetically (1 and 1.0 are equal)
            terms += [alias.c.value_num.is_(None), alias.c.value_num.desc() if order.descending else alias.c.value_num.asc()]
            column = case((alias.c.value_num.is_(None), alias.c.value), else_=None)
        terms.append(column.is_(None))  # runs without the key last, on either backend
        terms.append(column.desc() if order.descending else column.asc())
    terms += [t.runs.c.start_time.desc(), t.runs.c.id]
    return query.order_by(*terms)


def _attach(conn, rows: list[dict[str, Any]]) -> None:
    """Add params (typed), latest metrics and tags to each run of a page; ``run_id`` as MLflow names it."""
    for row in attach_run_extras(conn, rows):
        row["run_id"] = row["id"]


def count_runs(filter: str | None = None, *, project: str | None = None, store: SqlStore | None = None) -> int:  # noqa: A002
    """How many runs match ``filter`` (same grammar and project default as :func:`search_runs`)."""
    from .. import config
    from ..store import get_store

    store = store or get_store()
    project = config.project_name(project) if project != "*" else None
    query = _count_query(parse_filter(filter), project)
    with read_transaction(store.engine) as conn:
        return conn.execute(query).scalar_one()


def matching_runs(filter: str | None = None, *, project: str | None = None):  # noqa: A002
    """A ``SELECT runs.id, runs.start_time`` of the runs matching ``filter``, to aggregate or sample in SQL.

    Same grammar and project default as :func:`search_runs` (``"*"`` for every project).
    """
    from .. import config

    project = config.project_name(project) if project != "*" else None
    query = select(t.runs.c.id, t.runs.c.start_time).select_from(
        t.runs.join(t.projects, t.projects.c.id == t.runs.c.project_id))
    if project is not None:
        query = query.where(t.projects.c.name == project)
    for clause in parse_filter(filter):
        query = query.where(_condition(clause))
    return query


def metric_keys(*, project: str | None = None, store: SqlStore | None = None) -> list[str]:
    """Names of the metrics recorded by runs of ``project`` (default current, ``"*"`` all), sorted."""
    from .. import config
    from ..store import get_store

    store = store or get_store()
    lm = t.latest_metrics
    # A loose index scan: one index seek per distinct key instead of reading every metric row.
    keys, last = [], None
    with read_transaction(store.engine) as conn:
        while True:
            query = select(func.min(lm.c.key))
            last = conn.execute(query if last is None else query.where(lm.c.key > last)).scalar()
            if last is None:
                break
            keys.append(last)
        if project == "*":
            return keys
        in_project = (
            select(lm.c.run_id)
            .join(t.runs, t.runs.c.id == lm.c.run_id)
            .join(t.projects, t.projects.c.id == t.runs.c.project_id)
            .where(t.projects.c.name == config.project_name(project))
        )
        return [k for k in keys if conn.execute(in_project.where(lm.c.key == k).limit(1)).first() is not None]
