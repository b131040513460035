"""``%mlops pipeline`` and ``%mlops lineage``: the notebook's inferred pipeline and a record's lineage, drawn."""

from __future__ import annotations

from typing import Any

from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import MlopsError
from ..magic_parsing import parse


@magic_arguments()
@argument("--notebook", default=None, help="the notebook whose tracked cells to draw (default: this one)")
def _pipeline_args(line):
    """%mlops pipeline: the pipeline this notebook's tracked cells form (cells → data → models → metrics)."""


def pipeline_command(shell, line: str) -> Any:
    args = parse(_pipeline_args, line, "pipeline")
    if args is None:
        return None
    from ..environment import notebook_path
    from ..store import get_store
    from . import Charts, pipeline_chart

    path = args.notebook or notebook_path(shell.user_ns)
    if not path:
        raise MlopsError("%mlops pipeline cannot tell which notebook this is: pass --notebook PATH.")
    answer = pipeline_chart(get_store(), _path_forms(path))
    return Charts(answer["charts"])


def _path_forms(path: str) -> list[str]:
    """The path as runs may have recorded it: as given, absolute, and resolved."""
    import os

    return list(dict.fromkeys([path, os.path.abspath(path), os.path.realpath(path)]))


@magic_arguments()
@argument("ref", help="a run id, run:ID, data:DIGEST, model:NAME@ALIAS, model:NAME/VERSION or model:DIGEST")
@argument("--text", action="store_true", help="the indented text tree only, no graph")
def _lineage_args(line):
    """%mlops lineage: where a run, data version or model came from and what used it, as a graph."""


def lineage_command(shell, line: str) -> Any:
    args = parse(_lineage_args, line, "lineage")
    if args is None:
        return None
    from IPython.display import display

    from ..registry.lineage import lineage
    from ..store import get_store
    from . import Charts, lineage_chart

    tree = lineage(args.ref)
    if not args.text:
        display(Charts(lineage_chart(get_store(), args.ref)["charts"]))
    return tree
