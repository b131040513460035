"""``mlops-nb models …`` and ``mlops-nb audit …``: click commands over the registry API."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .tables import Table

_policy_option = click.option(
    "--policy", type=click.Path(dir_okay=False), help="Policy file (default: policy.toml beside the registry)."
)
_reason_option = click.option("--reason", "-m", help="Why: kept in the audit trail.")


def _echo_table(table: Table, empty: str) -> None:
    # Plain rows, not a DataFrame: a listing should not wait for pandas to import.
    from ..report import listing_text

    click.echo(listing_text(*table, empty))


@click.group("models", invoke_without_command=True)
@click.pass_context
def models_group(ctx: click.Context) -> None:
    """Registered models: list, versions, register, promote, approve, roll back."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_models)


@models_group.command("list")
def list_models() -> None:
    """Registered models with their aliases."""
    from . import models
    from .tables import models_table

    _echo_table(models_table(models()), "No registered model yet: mlops-nb models register MODEL_DIGEST --name NAME.")


@models_group.command("versions")
@click.argument("name")
def versions_command(name: str) -> None:
    """Versions of NAME, newest first, with aliases, metrics and training data."""
    from . import versions
    from .tables import versions_table

    _echo_table(versions_table(versions(name)), f"{name} has no versions.")


@models_group.command("show")
@click.argument("ref")
def show_command(ref: str) -> None:
    """One model version in full: REF is NAME@ALIAS, NAME:VERSION or a digest."""
    from . import get_model_version

    v = get_model_version(ref)
    click.echo(repr(v))
    click.echo(f"  digest   {v.digest}\n  class    {v.class_name} ({v.flavor})\n  run      {v.run_id or 'none'}")
    for d in v.data:
        click.echo(f"  data     {d['name']} {d['digest'][:12]} {d.get('shape')}")
    for key, value in v.metrics.items():
        click.echo(f"  metric   {key} = {value:.6g}")
    for w in v.warnings:
        click.echo(f"  warning  {w.get('message') or w}")


@models_group.command("register")
@click.argument("model")
@click.option("--name", required=True, help="Registered model name.")
@click.option("--alias", help="Also promote the new version to this alias.")
@click.option("--description", help="Description of the model.")
@_reason_option
def register_command(model: str, name: str, alias: str | None, description: str | None, reason: str | None) -> None:
    """Register MODEL (a model version digest or reference) as the next version of NAME."""
    from . import register

    version = register(model, name=name, alias=alias, description=description, reason=reason)
    click.echo(f"{version.ref} registered ({version.digest[:12]}){' @' + alias if alias else ''}")


@models_group.command("promote")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@_reason_option
@_policy_option
@click.option("--direct", is_flag=True, help="Move an alias that needs approvers without a request (team registry: admins only).")
def promote_command(name: str, version: str, alias: str, reason: str | None, policy: str | None, direct: bool) -> None:
    """Point NAME@ALIAS at VERSION, through the policy's gates."""
    from . import promote
    from .tables import promotion_line

    click.echo(promotion_line(promote(name, version, alias, reason=reason, policy=policy, direct=direct)))


@models_group.command("approve")
@click.argument("request_id", type=int)
@click.option("--comment", "-m", help="Kept with the approval in the audit trail.")
@_policy_option
def approve_command(request_id: int, comment: str | None, policy: str | None) -> None:
    """Approve promotion request REQUEST_ID (as MLOPS_NB_USER or the OS user)."""
    from . import approve
    from .tables import promotion_line

    click.echo(promotion_line(approve(request_id, comment=comment, policy=policy)))


@models_group.command("requests")
@click.argument("name", required=False)
@click.option("--all", "show_all", is_flag=True, help="Decided requests too.")
def requests_command(name: str | None, show_all: bool) -> None:
    """Promotion requests waiting for approval."""
    from ..store import get_store
    from .tables import requests_table

    rows = get_store().list_promotion_requests(name, status=None if show_all else "pending")
    _echo_table(requests_table(rows), "No pending promotion request.")


@models_group.command("rollback")
@click.argument("name")
@click.argument("alias")
@click.option("--from", "from_version", metavar="VERSION", help="Only if NAME@ALIAS still points at VERSION.")
@_reason_option
def rollback_command(name: str, alias: str, from_version: str | None, reason: str | None) -> None:
    """Point NAME@ALIAS back at its previous holder."""
    from . import rollback
    from .tables import promotion_line

    click.echo(promotion_line(rollback(name, alias, from_version=from_version, reason=reason)))


@models_group.command("remove-alias")
@click.argument("name")
@click.argument("alias")
@_reason_option
def remove_alias_command(name: str, alias: str, reason: str | None) -> None:
    """Remove NAME@ALIAS."""
    from . import remove_alias
    from .tables import promotion_line

    click.echo(promotion_line(remove_alias(name, alias, reason=reason)))


@click.group("audit", invoke_without_command=True)
@click.pass_context
def audit_group(ctx: click.Context) -> None:
    """The audit trail: list, verify, export, head."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_audit)


@audit_group.command("list")
@click.option("--name", help="Only events of this registered model.")
@click.option("--last", type=click.IntRange(min=1), help="Only the N newest events.")
def list_audit(name: str | None, last: int | None) -> None:
    """Audit events, oldest first."""
    from . import audit
    from .tables import audit_table

    events = audit(name)
    _echo_table(audit_table(events[-last:] if last else events), "The audit trail is empty.")


@audit_group.command("verify")
@click.option("--head", help="ID:HASH printed earlier by `mlops-nb audit head`: detects deleted newest events.")
def verify_command(head: str | None) -> None:
    """Check the hash chain (and HMACs with MLOPS_NB_AUDIT_KEY); exit 1 when damaged."""
    from . import verify_audit

    result = verify_audit(head=head)
    click.echo(str(result))
    if not result.ok:
        sys.exit(1)


@audit_group.command("head")
def head_command() -> None:
    """Print the chain head (ID:HASH) to keep elsewhere, e.g. in a commit or a ticket."""
    from . import audit_head

    click.echo(audit_head())


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--name", help="Only events of this registered model.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write here instead of standard output.")
def export_command(fmt: str, name: str | None, output: str | None) -> None:
    """Export the audit events."""
    from .audit import export_audit

    text = export_audit(fmt, name=name)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
        click.echo(f"{text.count(chr(10)) - (fmt == 'csv')} events written to {output}")
    else:
        click.echo(text, nl=False)


@click.command("lineage")
@click.argument("ref")
def lineage_command(ref: str) -> None:
    """Where REF came from and what used it: run:ID, data:DIGEST or model:DIGEST."""
    from .lineage import lineage

    click.echo(repr(lineage(ref)))


COMMANDS = [models_group, audit_group, lineage_command]
