"""``mlops-nb data`` (show, export a data version) and ``mlops-nb gc``."""

from __future__ import annotations

import click


@click.group("data")
def data_command() -> None:
    """Data versions: what a snapshot holds, export one to a file, diff two."""


@data_command.command("show")
@click.argument("ref")
def show_command(ref: str) -> None:
    """Shape, chunks and bytes (in memory, stored, new) of the versions REF names."""
    from . import snapshot_table

    click.echo(snapshot_table(ref))


@data_command.command("export")
@click.argument("ref")
@click.argument("path", type=click.Path(dir_okay=False))
def export_command(ref: str, path: str) -> None:
    """Write the data version REF names to PATH (.parquet or .csv for a table, .npy for an array)."""
    from . import export_data

    target = export_data(ref, path)
    click.echo(f"wrote {target}")


@data_command.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--key", multiple=True, help="Column(s) identifying a row (repeatable); else rows compare by content.")
@click.option("--shift/--no-shift", default=None, help="Distribution shift per column (default: up to 1M rows).")
@click.option("--json", "as_json", is_flag=True, help="The counts as JSON.")
def diff_command(a: str, b: str, key: tuple[str, ...], shift: bool | None, as_json: bool) -> None:
    """Schema, rows and values that differ between data versions A and B; exit 1 when they differ."""
    import json
    import sys

    from .diff import data_diff

    result = data_diff(a, b, key=list(key) or None, shift=shift)
    click.echo(json.dumps(result.summary(), default=str, indent=1) if as_json else result.text())
    sys.exit(0 if result.identical else 1)


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--keep-days", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Keep every snapshot made in the last N days.")  # fmt: skip
def gc_command(dry_run: bool, keep_days: float) -> None:
    """Remove snapshot chunks no kept data version lists (registered models' data and recent ones are kept)."""
    from ..report import size_text
    from . import gc

    done = gc(keep_days=keep_days, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {done['versions']} snapshot(s), {done['chunks']} chunk(s), {size_text(done['bytes'])} freed"
               + (" (dry run)" if dry_run else ""))  # fmt: skip


COMMANDS = [data_command, gc_command]
