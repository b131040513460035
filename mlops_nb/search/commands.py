"""``mlops-nb runs``: a run search as a table."""

from __future__ import annotations

import click


@click.command("runs")
@click.option("--last", type=click.IntRange(min=1), help="Only the N newest runs.")
@click.option("--name", help="Only runs with this name.")
@click.option("--status", type=click.Choice(["running", "finished", "failed", "interrupted"]))
@click.option("--params", "with_params", is_flag=True, help="Also show params (wide).")
@click.option("--filter", "filter_", metavar="FILTER", help="Run search, e.g. \"metrics.accuracy > 0.9 and params.C = 1\".")
@click.option("--order-by", multiple=True, metavar="ORDER", help="E.g. 'metrics.accuracy desc' (repeatable).")
@click.option("--all-projects", is_flag=True, help="Runs of every project (default: the current project, --project).")
def runs_command(last: int | None, name: str | None, status: str | None, with_params: bool, filter_: str | None,
                 order_by: tuple[str, ...], all_projects: bool) -> None:  # fmt: skip
    """Recorded runs of the project, newest first: id, name, status, start, duration and metrics."""
    from ..report import table_text, when_text
    from . import count_runs, quote, search_runs

    clauses = [filter_] if filter_ else []
    clauses += [f"{field} = {quote(value)}" for field, value in (("name", name), ("status", status)) if value]
    text, project = " and ".join(clauses) or None, "*" if all_projects else None
    page = search_runs(text, order_by=list(order_by) or None, max_results=last or 1000, project=project)
    if not page:
        click.echo("no runs match" if text else "no runs recorded yet")
        return
    # Plain rows, not a DataFrame: a listing should not wait for pandas to import.
    metrics = list(dict.fromkeys(k for run in page for k in run["metrics"]))
    params = list(dict.fromkeys(k for run in page for k in run["params"])) if with_params else []
    header = ["run_id", "name", "status", "start_time", "duration_s", *metrics, *(f"params.{k}" for k in params)]
    rows = [
        [run["id"][:8], run["name"] or "-", run["status"], when_text(run["start_time"]),
         None if run["duration"] is None else round(run["duration"], 2),
         *(run["metrics"].get(k) for k in metrics), *(run["params"].get(k) for k in params)]
        for run in page
    ]  # fmt: skip
    click.echo(table_text(header, rows))
    if page.next_page_token:
        click.echo(f"(the first {len(page)} of {count_runs(text, project=project)} runs; --last N for more)")


COMMANDS = [runs_command]
