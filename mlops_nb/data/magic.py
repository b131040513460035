"""``%mlops data get|diff|show``."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..magic_parsing import parse


@magic_arguments()
@argument("action", choices=["get", "diff", "show"])
@argument("refs", nargs="+", help="data:DIGEST, run:ID/NAME or model:NAME@ALIAS/train")
@argument("--as", dest="target", help="get: bind the data to this variable name")
@argument("--key", action="append", help="diff: column(s) identifying a row (repeatable)")
@argument("--shift", action="store_true", help="diff: distribution shift even for large versions")
def _data_args(line):
    """%mlops data: get a data version back, diff two, or show what a snapshot holds."""


def data_command(shell, line: str) -> Any:
    args = parse(_data_args, line, "data")
    if args is None:
        return None
    if args.action == "get":
        if len(args.refs) != 1:
            raise UsageError("%mlops data get takes one reference, e.g. %mlops data get run:1a2b3c4d/df --as df")
        from . import load_data

        obj = load_data(args.refs[0])
        if args.target:
            if not args.target.isidentifier():
                raise UsageError(f"--as needs a variable name, got {args.target!r}.")
            shell.user_ns[args.target] = obj
            return None
        return obj
    if args.action == "diff":
        if len(args.refs) != 2:
            raise UsageError("%mlops data diff takes two references, e.g. %mlops data diff run:1a2b/df run:3c4d/df")
        from .diff import data_diff

        return data_diff(args.refs[0], args.refs[1], key=args.key, shift=True if args.shift else None)
    from . import snapshot_table

    for ref in args.refs:
        print(snapshot_table(ref))
    return None
