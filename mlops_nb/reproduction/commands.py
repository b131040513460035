"""``mlops-nb reproduce``."""

from __future__ import annotations

import sys

import click


@click.command("reproduce")
@click.argument("run_id")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-9, show_default=True,
              help="Relative tolerance for metrics.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=1), default=1800.0, show_default=True,
              help="Seconds the re-run may take.")  # fmt: skip
def reproduce_command(run_id: str, rtol: float, timeout: float) -> None:
    """Re-run RUN_ID (a job run or a tracked cell) in a fresh kernel; exit 0 only when models, metrics and environment match."""
    from . import reproduce

    result = reproduce(run_id, rtol=rtol, timeout=timeout)
    click.echo(result.text())
    sys.exit(0 if result.matched else 1)


COMMANDS = [reproduce_command]
