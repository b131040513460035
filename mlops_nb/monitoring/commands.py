"""``mlops-nb monitor add|list|history|check|pause|resume|remove`` and ``mlops-nb alerts``."""

from __future__ import annotations

import click

from ..report import when_text


@click.group("monitor")
def monitor_group() -> None:
    """Model monitors: check new data on a schedule, retrain, champion vs challenger."""


@monitor_group.command("add")
@click.argument("name")
@click.option("--model", required=True, help="NAME@ALIAS to watch (and move when a challenger wins), e.g. churn@production.")
@click.option("--data", required=True, help="Glob of the incoming files (newest is checked), a notebook writing output_path, "
              "or served:NAME@ALIAS (requests logged by mlops-nb serve --log-sample).")  # fmt: skip
@click.option("--since", help="With served: data, the window checked (e.g. 1d, 12h).")
@click.option("--cron", required=True, help="When to check, five cron fields (e.g. '0 6 * * *').")
@click.option("--retrain", required=True, type=click.Path(dir_okay=False), help="Retrain notebook (declares data_path).")
@click.option("--drift-share", type=float, help="Trigger when at least this share of columns drifted.")
@click.option("--metric", help="Metric on labelled new data (accuracy, f1, roc_auc, rmse...).")
@click.option("--min", "min_", type=float, help="Trigger when the metric falls below this.")
@click.option("--max", "max_", type=float, help="Trigger when the metric rises above this.")
@click.option("--label-column", help="Column of the new data holding the true labels.")
@click.option("--eval-fraction", type=float, default=0.3, show_default=True, help="Share of labelled new rows held out for the race.")
@click.option("-p", "--param", "params", nargs=2, multiple=True, help="Extra retrain notebook parameter NAME VALUE.")
@click.option("--timeout", type=float, help="Seconds the retrain notebook may run.")
@click.option("--tz", default="UTC", show_default=True)
@click.option("--replace", is_flag=True, help="Overwrite a monitor of the same name.")
def add_command(name, model, data, since, cron, retrain, drift_share, metric, min_, max_, label_column, eval_fraction, params, timeout, tz, replace) -> None:
    """Add monitor NAME (fired by mlops-nb scheduler on its cron)."""
    import yaml

    from . import monitor

    parameters = {k: yaml.safe_load(v) for k, v in params}
    m = monitor(
        name, model=model, data=data, cron=cron, retrain=retrain, drift_share=drift_share, metric=metric,
        min=min_, max=max_, label_column=label_column, eval_fraction=eval_fraction, parameters=parameters,
        timeout=timeout, tz=tz, replace=replace, since=since,
    )  # fmt: skip
    click.echo(f"monitor {m['name']} added: {m['model']} on {m['data']} at '{m['cron']}' ({_thresholds(m)}); retrain {m['retrain']}")
    click.echo("it fires while `mlops-nb scheduler` runs; `mlops-nb monitor check " + m["name"] + "` fires it now")


def _thresholds(m) -> str:
    parts = []
    if m["drift_share"] is not None:
        parts.append(f"drift share >= {m['drift_share']:g}")
    if m["metric_min"] is not None:
        parts.append(f"{m['metric']} < {m['metric_min']:g}")
    if m["metric_max"] is not None:
        parts.append(f"{m['metric']} > {m['metric_max']:g}")
    return ", ".join(parts)


@monitor_group.command("list")
def list_command() -> None:
    """Monitors with their thresholds and latest firing."""
    from . import monitors

    rows = monitors()
    if not rows:
        click.echo("no monitors: mlops-nb monitor add NAME --model M@production --data 'incoming/*.parquet' --cron CRON --retrain NB")
        return
    for m in rows:
        last = f"last {when_text(m['last_slot'])} {m['last_status']}" if m["last_slot"] else "never fired"
        if m["paused"]:
            last += " · PAUSED"
        click.echo(f"{m['name']:<20} {m['model']:<22} '{m['cron']}'  {_thresholds(m)}  · {last}")


@monitor_group.command("history")
@click.argument("name")
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True)
def history_command(name: str, last: int) -> None:
    """Checks of monitor NAME: numbers, decision, reason."""
    from ..store import get_store

    store = get_store()
    store.get_monitor(name)  # unknown name: a clear error
    checks = store.list_monitor_checks(name, last=last)
    if not checks:
        click.echo(f"monitor {name} has not been checked yet")
    for c in checks:
        numbers = []
        if c["drift_share"] is not None:
            numbers.append(f"drift {c['drift_share']:.0%}")
        if c["metric_value"] is not None:
            numbers.append(f"{c['metric']}={c['metric_value']:.4f}")
        challenger = f" challenger v{c['challenger_version']}" if c["challenger_version"] else ""
        click.echo(f"#{c['id']} {when_text(c['created_at'])} v{c['version']} {c['decision'] or 'running'}{challenger} "
                   f"[{', '.join(numbers) or '-'}] {c['reason'] or ''}")  # fmt: skip


@monitor_group.command("check")
@click.argument("name")
@click.option("--force", is_flag=True, help="Check the newest data even if it was checked already.")
def check_command(name: str, force: bool) -> None:
    """Fire monitor NAME now and print the decision."""
    from . import check_monitor

    result = check_monitor(name, force=force)
    click.echo(f"monitor {name}: {result.decision} — {result.reason}")
    if result.queued:
        click.echo(f"  queued (registry unreachable: {result.queued}): the outcome, its audit event and alert "
                   "are written when the registry answers (mlops-nb status)")  # fmt: skip


@monitor_group.command("pause")
@click.argument("name")
def pause_command(name: str) -> None:
    """Stop firing monitor NAME on its cron (monitor check still works)."""
    from ..store import get_store

    get_store().set_monitor_paused(name, True)
    click.echo(f"monitor {name} paused")


@monitor_group.command("resume")
@click.argument("name")
def resume_command(name: str) -> None:
    """Fire monitor NAME on its cron again."""
    from ..store import get_store

    get_store().set_monitor_paused(name, False)
    click.echo(f"monitor {name} resumed")


@monitor_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Remove monitor NAME (its checks and alerts stay)."""
    from . import remove_monitor

    remove_monitor(name)
    click.echo(f"monitor {name} removed")


@click.command("alerts")
@click.option("--monitor", help="Only this monitor's alerts.")
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True)
def alerts_command(monitor: str | None, last: int) -> None:
    """Alerts from monitors, newest first."""
    from ..report import listing_text
    from ..store import get_store

    rows = [
        [a["id"], when_text(a["created_at"]), a["severity"], a["monitor"], f"{a['model']}:{a['version']}",
         a["decision"], a["message"]]
        for a in get_store().list_alerts(monitor, last=last)
    ]  # fmt: skip
    click.echo(listing_text(["id", "when", "severity", "monitor", "model", "decision", "message"], rows, "no alerts"))


COMMANDS = [monitor_group, alerts_command]
