"""``%mlops runs``: the RunsPanel over a run search."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..magic_parsing import parse


@magic_arguments()
@argument("--last", type=int, help="only the N newest runs")
@argument("--name", help="only runs with this name")
@argument("--status", choices=["running", "finished", "failed", "interrupted"])
@argument("--project", help="only runs of this project (default: the current one)")
@argument("--all", dest="all_projects", action="store_true", help="runs of every project")
@argument("--filter", help="run search filter, e.g. \"metrics.accuracy > 0.9 and params.C = 1\"")
@argument("--order-by", action="append", help="e.g. 'metrics.accuracy desc' (repeatable)")
def _runs_args(line):
    """%mlops runs: recorded runs (the RunsPanel), newest first."""


def runs_command(shell, line: str) -> Any:
    args = parse(_runs_args, line, "runs")
    if args is None:
        return None
    if args.last is not None and args.last < 1:
        raise UsageError("--last must be a positive number of runs.")
    from ..widgets.runs_panel import PAGE_SIZE, RunsPanel
    from .grammar import quote

    clauses = [args.filter] if args.filter else []
    clauses += [f"{field} = {quote(value)}" for field, value in (("name", args.name), ("status", args.status)) if value]
    project = "*" if args.all_projects else args.project
    # The panel checks the filter before it is shown: a bad one is a UsageError, not a panel.
    return RunsPanel(filter=" and ".join(clauses), order_by=args.order_by, project=project,
                     page_size=args.last or PAGE_SIZE, strict=True)  # fmt: skip
