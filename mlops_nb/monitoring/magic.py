"""``%mlops monitor …`` and ``%mlops alerts``: the same sub-commands as ``mlops-nb monitor`` / ``mlops-nb alerts``."""

from __future__ import annotations

import shlex

import click
from IPython.core.error import UsageError

from .commands import alerts_command, monitor_group


def _invoke(command: click.Command, name: str, line: str) -> None:
    try:
        args = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%mlops {name}: cannot read the line ({exc}); check the quotes.") from None
    try:
        command.main(args=args, prog_name=f"%mlops {name}", standalone_mode=False)
    except click.exceptions.Exit:
        pass  # --help
    except click.ClickException as exc:  # a wrong option or a missing argument
        raise UsageError(f"%mlops {name}: {exc.format_message()}") from None


def monitor_command(shell, line: str) -> None:
    """``%mlops monitor add|list|history|check|remove …`` (see ``%mlops monitor --help``)."""
    if not line.strip():
        line = "--help"
    _invoke(monitor_group, "monitor", line)


def alerts_command_magic(shell, line: str) -> None:
    """``%mlops alerts [--monitor NAME] [--last N]``."""
    _invoke(alerts_command, "alerts", line)
