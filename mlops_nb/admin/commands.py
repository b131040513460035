"""``mlops-nb admin …``: team roles on a PostgreSQL registry (click commands over mlops_nb.admin)."""

from __future__ import annotations

import json

import click

_ROLES = click.Choice(["reader", "writer", "approver", "admin"])


@click.group("admin")
def admin_group() -> None:
    """Team roles on a PostgreSQL registry: init-roles, grant, revoke, who, policy load."""


@admin_group.command("init-roles")
def init_roles_command() -> None:
    """Create the reader/writer/approver/admin roles and let the database enforce them (run by the tables' owner)."""
    from . import init_roles

    roles = init_roles()
    click.echo(
        f"Team roles ready: {', '.join('mlops_' + r for r in roles)}. Aliases, approvals and the audit trail are "
        "now guarded by the database. Next: mlops-nb admin grant USER ROLE."
    )


@admin_group.command("grant")
@click.argument("user")
@click.argument("role", type=_ROLES)
@click.option("--password", is_flag=True, help="Prompt for a password to set on the login role.")
def grant_command(user: str, role: str, password: bool) -> None:
    """Give USER the team ROLE (the login role is created when new)."""
    from . import grant

    secret = click.prompt(f"Password for {user}", hide_input=True, confirmation_prompt=True) if password else None
    created = grant(user, role, password=secret)
    click.echo(f"{user} {'created and ' if created else ''}granted {role}.")


@admin_group.command("revoke")
@click.argument("user")
@click.argument("role", type=_ROLES)
def revoke_command(user: str, role: str) -> None:
    """Take the team ROLE away from USER."""
    from . import revoke

    revoke(user, role)
    click.echo(f"{user} no longer holds {role} (directly).")


@admin_group.command("who")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def who_command(as_json: bool) -> None:
    """Who you are to the database, and who holds each team role."""
    from . import who

    found = who()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"you: {found['you']} ({', '.join(found['your_roles']) or 'no team role'})")
    for role, users in found["members"].items():
        click.echo(f"{role:<9} {', '.join(users) or '-'}")


@admin_group.group("policy")
def policy_group() -> None:
    """The promotion policy kept in the registry's database."""


@policy_group.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def policy_load_command(file: str) -> None:
    """Make FILE (a policy.toml) the policy in force (admins only; audited)."""
    from . import load_policy

    version = load_policy(file)
    click.echo(f"Policy version {version} loaded from {file}.")


@policy_group.command("show")
def policy_show_command() -> None:
    """The policy in force, as JSON."""
    from . import show_policy

    found = show_policy()
    click.echo("No policy loaded: no alias has gates or approvers." if found is None else json.dumps(found, indent=2, default=str))


COMMANDS = [admin_group]
