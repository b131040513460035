"""``%mlops init | show | status``: where runs go, one run in full, what waits to reach the registry.

``%%mlops track`` itself is read by the cell hooks (:mod:`.hooks`, its
arguments in :mod:`.options`); ``%mlops autotrack`` switches :mod:`.autotrack`.
"""

from __future__ import annotations

import dataclasses

from IPython.core.magic_arguments import argument, magic_arguments

from .. import config
from ..errors import MlopsError
from ..magic_parsing import parse


@magic_arguments()
@argument("--project", help="project new runs belong to")
@argument("--store", help="SQLAlchemy URL of the registry database")
@argument("--artifacts", help="fsspec URL of the artifact folder")
def _init_args(line):
    """%mlops init: choose the project and the registry."""


@magic_arguments()
@argument("run_id", help="run id or a unique prefix of it")
def _show_args(line):
    """%mlops show: one run in full."""


def init_command(shell, line: str) -> None:
    args = parse(_init_args, line, "init")
    if args is None:
        return
    from ..store import get_store

    previous = dataclasses.replace(config.settings)
    config.init(project=args.project, store=args.store, artifacts=args.artifacts)
    try:
        store = get_store()  # opened now, so a bad URL is reported here, not at the next run
    except MlopsError:
        config.settings.__dict__.update(previous.__dict__)  # keep the working configuration
        raise
    print(f"mlops: project {config.project_name()!r}, registry {store.url}, artifacts {store.artifacts.url}")


def show_command(shell, line: str) -> None:
    args = parse(_show_args, line, "show")
    if args is None:
        return
    from ..report import run_report
    from ..store import get_store

    print(run_report(get_store().get_run(args.run_id)))


def status_command(shell, line: str) -> None:
    """``%mlops status``: records waiting in the local spool for the current registry, and why."""
    from .spool import waiting
    from .writer import report

    report()
    url = config.store_url()
    found = waiting(url)
    if not found:
        print(f"mlops: every record is in the registry {url}")
        return
    for w in found:
        print(f"mlops: in the local spool, {w.line()}")
    print("mlops: they are written as soon as the registry answers; mlops_nb.sync() tries now.")
