"""The ``mlops-nb`` command line."""

from __future__ import annotations

import importlib
import sys

import click

from . import config
from .errors import MlopsError


class _Group(click.Group):
    """Turns mlops_nb errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--store", envvar="MLOPS_NB_STORE_URL", help="SQLAlchemy URL of the registry (default ./.mlops).")
@click.option("--artifacts", envvar="MLOPS_NB_ARTIFACTS_URL", help="fsspec URL of the artifact folder.")
@click.option("--project", envvar="MLOPS_NB_PROJECT", help="Project name.")
@click.version_option(package_name="mlops_nb")
@click.pass_context
def main(ctx: click.Context, store: str | None, artifacts: str | None, project: str | None) -> None:
    """MLOps for Jupyter notebooks: runs, data and model versions, drift, notebook jobs."""
    config.init(project=project, store=store, artifacts=artifacts)
    if ctx.invoked_subcommand not in {"sync", "status"}:
        _replay_spool()
    # Only commands that record something may create a registry; the others say none is here.
    config.settings.create_store = ctx.invoked_subcommand in CREATES_REGISTRY
    ctx.call_on_close(lambda: setattr(config.settings, "create_store", True))


def _replay_spool() -> None:
    """Write records an unreachable registry left in the local spool, now that a command runs."""
    from .tracking.spool import has_waiting, reason_text, replay

    url = config.store_url()
    if not has_waiting(url):
        return
    try:
        written, why = replay(url)
    except Exception as exc:  # the command itself will say what is wrong with the registry
        written, why = 0, reason_text(exc)
    if written:
        click.echo(f"mlops: wrote {written} record(s) that waited in the local spool", err=True)
    if why:
        click.echo(f"mlops: records still wait in the local spool ({why}); see mlops-nb status", err=True)


#: Commands that may create a registry where none exists (``schedule add`` says so itself).
CREATES_REGISTRY = {"run", "batch", "validate", "scheduler"}


# Every sub-command lives with the feature it drives (tracking/commands.py, registry/commands.py, ...).
for _module in (
    "mlops_nb.tracking.commands", "mlops_nb.search.commands", "mlops_nb.registry.commands", "mlops_nb.jobs.commands",
    "mlops_nb.doctor", "mlops_nb.scoring.commands", "mlops_nb.monitoring.commands",
):
    try:
        for _command in importlib.import_module(_module).COMMANDS:
            main.add_command(_command)
    except ModuleNotFoundError as _exc:
        if _exc.name != _module:
            raise

if __name__ == "__main__":  # pragma: no cover
    main()
