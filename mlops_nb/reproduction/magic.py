"""``%mlops reproduce``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..magic_parsing import parse


@magic_arguments()
@argument("run_id", help="the run to reproduce (a tracked cell or a job run)")
@argument("--rtol", type=float, default=1e-9, help="relative tolerance for metrics (default 1e-9)")
@argument("--timeout", type=float, default=1800.0, help="seconds the re-run may take (default 1800)")
def _reproduce_args(line):
    """%mlops reproduce: re-run a recorded run in a fresh kernel and compare its models, metrics and environment."""


def reproduce_command(shell, line: str) -> Any:
    args = parse(_reproduce_args, line, "reproduce")
    if args is None:
        return None
    if args.rtol < 0 or args.timeout <= 0:
        raise UsageError("--rtol must be >= 0 and --timeout > 0.")
    from . import reproduce

    return reproduce(args.run_id, rtol=args.rtol, timeout=args.timeout)
