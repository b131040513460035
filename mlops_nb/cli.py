"""The ``mlops-nb`` command line."""

from __future__ import annotations

import importlib
import sys

import click

from . import config
from .errors import MlopsError


class _Group(click.Group):
    """Turns mlops_nb errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--store", envvar="MLOPS_NB_STORE_URL", help="SQLAlchemy URL of the registry (default ./.mlops).")
@click.option("--artifacts", envvar="MLOPS_NB_ARTIFACTS_URL", help="fsspec URL of the artifact folder.")
@click.option("--project", envvar="MLOPS_NB_PROJECT", help="Project name.")
@click.version_option(package_name="mlops_nb")
@click.pass_context
def main(ctx: click.Context, store: str | None, artifacts: str | None, project: str | None) -> None:
    """MLOps for Jupyter notebooks: runs, data and model versions, drift, notebook jobs."""
    config.init(project=project, store=store, artifacts=artifacts)
    # Only commands that record something may create a registry; the others say none is here.
    config.settings.create_store = ctx.invoked_subcommand in CREATES_REGISTRY
    ctx.call_on_close(lambda: setattr(config.settings, "create_store", True))


#: Commands that may create a registry where none exists (``schedule add`` says so itself).
CREATES_REGISTRY = {"run", "batch", "validate", "scheduler"}


@main.command()
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True, help="How many recent runs to list.")
def summary(last: int) -> None:
    """What the registry holds, and the newest runs with their data versions, models and metrics."""
    from .report import metrics_text, shape_text
    from .store import get_store

    store = get_store()
    counts = store.summary()
    click.echo(f"registry  {store.url}\nartifacts {store.artifacts.url}")
    click.echo("  " + " · ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    recent = store.list_runs(last=last)
    if counts["runs"] > len(recent):
        click.echo(f"  (the {len(recent)} newest of {counts['runs']} runs; --last N for more)")
    producers: dict[str, str] = {}
    for row in reversed(recent):  # oldest first, so lineage reads top-down
        run = store.get_run(row["id"])
        metrics = metrics_text(run["metrics"])
        click.echo(f"  run {run['id'][:8]}  {run['name'] or '-':<16} {run['status']:<9} {metrics}")
        for label, items in (("read", run["inputs"]), ("produced", run["outputs"])):
            for d in items:
                shape = shape_text(d)
                origin = producers.get(d["digest"]) if label == "read" else None
                suffix = f"  ← run {origin}" if origin else ""
                click.echo(f"      {label:<9}{d['name']:<10}{shape:>9}  data  {d['digest'][:12]}{suffix}")
                if label == "produced":
                    producers.setdefault(d["digest"], run["id"][:8])
        for m in run["models"]:
            kind = m["class_name"].rsplit(".", 1)[-1]
            click.echo(f"      {'model':<9}{m['name']:<10}{kind:>9}  model {m['digest'][:12]}")


@main.command("runs")
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
    import pandas as pd

    from .search import count_runs, quote, search_runs

    clauses = [filter_] if filter_ else []
    clauses += [f"{field} = {quote(value)}" for field, value in (("name", name), ("status", status)) if value]
    text, project = " and ".join(clauses) or None, "*" if all_projects else None
    page = search_runs(text, order_by=list(order_by) or None, max_results=last or 1000, project=project)
    frame = page.df
    if not len(frame):
        click.echo("no runs match" if text else "no runs recorded yet")
        return
    prefixes = ("metrics.", "params.") if with_params else ("metrics.",)
    shown = frame[["run_id", "name", "status", "start_time", "duration_s"] + [c for c in frame if c.startswith(prefixes)]]
    shown = shown.assign(
        run_id=shown["run_id"].str[:8], start_time=shown["start_time"].dt.floor("s"), duration_s=pd.to_numeric(shown["duration_s"], errors="coerce").round(2)
    ).rename(columns=lambda c: c.removeprefix("metrics."))
    with pd.option_context("display.max_columns", None, "display.width", 250, "display.precision", 4):
        click.echo(shown.to_string(index=False, na_rep="-"))
    if page.next_page_token:
        click.echo(f"(the first {len(page)} of {count_runs(text, project=project)} runs; --last N for more)")


@main.command()
@click.argument("run_id")
def show(run_id: str) -> None:
    """One run in full."""
    from .report import run_report
    from .store import get_store

    click.echo(run_report(get_store().get_run(run_id)))


@main.command("lineage")
@click.argument("ref")
def lineage_command(ref: str) -> None:
    """Where REF came from and what used it: run:ID, data:DIGEST or model:DIGEST."""
    from .lineage import lineage

    click.echo(repr(lineage(ref)))


# Commands that live with the feature they drive (notebook jobs, ...).
for _module in ("mlops_nb.jobs.commands", "mlops_nb.registry.commands", "mlops_nb.doctor", "mlops_nb.scoring.commands", "mlops_nb.monitoring.commands"):
    try:
        for _command in importlib.import_module(_module).COMMANDS:
            main.add_command(_command)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise

if __name__ == "__main__":  # pragma: no cover
    main()
