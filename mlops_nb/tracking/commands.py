"""``mlops-nb summary | show | status | sync``: what the registry holds, one run, what waits to reach it."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True, help="How many recent runs to list.")
def summary(last: int) -> None:
    """What the registry holds, and the newest runs with their data versions, models and metrics."""
    from ..report import metrics_text, shape_text
    from ..store import get_store

    store = get_store()
    counts = store.summary()
    click.echo(f"registry  {store.url}\nartifacts {store.artifacts.url}")
    click.echo("  " + " · ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    recent = store.list_runs(last=last)
    if counts["runs"] > len(recent):
        click.echo(f"  (the {len(recent)} newest of {counts['runs']} runs; --last N for more)")
    producers: dict[str, str] = {}
    for run in store.get_runs([row["id"] for row in reversed(recent)]):  # oldest first: lineage reads top-down
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


@click.command()
@click.argument("run_id")
def show(run_id: str) -> None:
    """One run in full."""
    from ..report import run_report
    from ..store import get_store

    click.echo(run_report(get_store().get_run(run_id)))


@click.command()
@click.option("--all", "all_stores", is_flag=True, help="Every store with records waiting on this machine.")
def status(all_stores: bool) -> None:
    """What waits in the local spool to reach the registry, and why. Exit 1 when something waits."""
    from .. import config
    from .spool import refused, waiting

    url = config.store_url()
    found = waiting(None if all_stores else url)
    kept = refused(url)
    for w in found:
        click.echo(w.line())
    for r in kept:
        click.echo(f"{url}: {r['what']} refused by the registry and kept aside in the spool: {r['reason']}")
    if not found and not kept:
        click.echo(f"nothing waits for {url if not all_stores else 'any registry'}: every record is in the registry")
        return
    if found:
        click.echo("They are written as soon as the registry answers (any mlops-nb command, %load_ext, or mlops-nb sync).")
    sys.exit(1)


@click.command()
def sync() -> None:
    """Write what waits in the local spool to the registry now. Exit 1 when some must still wait."""
    from .. import config
    from .spool import replay

    url = config.store_url()
    written, why = replay(url)
    click.echo(f"wrote {written} waiting record(s) to {url}")
    if why is not None:
        click.echo(f"records still wait: {why}", err=True)
        sys.exit(1)


COMMANDS = [summary, show, status, sync]
