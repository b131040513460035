"""The arguments of ``%%mlops track``, read by the magic and by the cell hooks alike."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..magic_parsing import parse


@magic_arguments()
@argument("--name", help="run name")
@argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="label the run (repeatable)")
@argument("--no-data", action="store_true", help="do not record data versions")
@argument("--no-models", action="store_true", help="do not record fitted estimators")
def _track_args(line):
    """%%mlops track: record what this cell reads and produces."""


def parse_track_options(line: str) -> tuple[str | None, dict[str, str], bool, bool] | None:
    """(name, tags, record data, record models) of ``%%mlops track`` arguments; None after ``--help``.

    Raises UsageError for bad arguments.
    """
    args = parse(_track_args, line, "track")
    if args is None:
        return None
    return args.name, _tags(args.tag), not args.no_data, not args.no_models


def _tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag expects KEY=VALUE, got {pair!r}.")
        tags[key.strip()] = value.strip()
    return tags
