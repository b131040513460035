"""Argument parsing shared by every ``%mlops`` sub-command."""

from __future__ import annotations

import shlex
from typing import Any

from IPython.core.error import UsageError


def parse(spec, line: str, command: str) -> Any:
    """Parse ``line`` with a ``magic_arguments`` spec; None after ``--help``.

    Quoting mistakes (an unterminated quote) become a one-line UsageError.
    """
    try:
        # shlex (POSIX rules) so that "a b" reaches the command as a b, as in a shell.
        return spec.parser.parse_args(shlex.split(line))
    except SystemExit:  # argparse exits after printing --help
        return None
    except ValueError as exc:  # shlex: "No closing quotation"
        raise UsageError(f"%mlops {command}: cannot read the line ({exc}); check the quotes.") from None
