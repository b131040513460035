"""The ``mlops-nb`` command line."""

from __future__ import annotations

import importlib
import sys

import click

from . import config
from .errors import MlopsError

#: Every sub-command lives with the feature it drives (in that module's COMMANDS): name -> (module, one-line help).
#: Nothing is imported until a command runs, so ``--help`` and a listing start at once; the
#: help line here must match the command's own (tests/test_cli.py checks it).
COMMANDS: dict[str, tuple[str, str]] = {
    "summary": ("mlops_nb.tracking.commands", "What the registry holds, and the newest runs with their data versions, models and metrics."),
    "show": ("mlops_nb.tracking.commands", "One run in full."),
    "status": ("mlops_nb.tracking.commands", "What waits in the local spool to reach the registry, and why."),
    "sync": ("mlops_nb.tracking.commands", "Write what waits in the local spool to the registry now."),
    "runs": ("mlops_nb.search.commands", "Recorded runs of the project, newest first: id, name, status, start, duration and metrics."),
    "models": ("mlops_nb.registry.commands", "Registered models: list, versions, register, promote, approve, roll back."),
    "audit": ("mlops_nb.registry.commands", "The audit trail: list, verify, export, head."),
    "lineage": ("mlops_nb.registry.commands", "Where REF came from and what used it: run:ID, data:DIGEST or model:DIGEST."),
    "validate": ("mlops_nb.jobs.commands", "Can NOTEBOOK become a job? Static checks, then two clean runs compared."),
    "run": ("mlops_nb.jobs.commands", "Execute NOTEBOOK with papermill in a separate process and record the job run."),
    "batch": ("mlops_nb.jobs.commands", "Run NOTEBOOK once per parameter combination, in parallel; print parameters × metrics × status."),
    "schedule": ("mlops_nb.jobs.commands", "Cron schedules kept in the registry, fired by `mlops-nb scheduler`."),
    "scheduler": ("mlops_nb.jobs.commands", "The embedded scheduler: fire due schedules with timeouts, retries and catch-up."),
    "jobs": ("mlops_nb.jobs.commands", "Recorded job runs (from run, batch and the scheduler)."),
    "k8s": ("mlops_nb.jobs.commands", "Kubernetes manifests beyond schedules: a Deployment + Service for `mlops-nb serve`."),
    "admin": ("mlops_nb.admin.commands", "Team roles on a PostgreSQL registry: init-roles, grant, revoke, who, policy load."),
    "doctor": ("mlops_nb.doctor", "Check the registry database and every artifact; remove leftovers of killed writes."),
    "predict": ("mlops_nb.scoring.commands", "Score a file with MODEL (NAME@ALIAS, NAME:VERSION or a digest), recorded as a scoring run."),
    "serve": ("mlops_nb.scoring.commands", "Serve MODEL over HTTP (/invocations, /health, /version); follows NAME@ALIAS when it moves."),
    "monitor": ("mlops_nb.monitoring.commands", "Model monitors: check new data on a schedule, retrain, champion vs challenger."),
    "alerts": ("mlops_nb.monitoring.commands", "Alerts from monitors, newest first."),
    "data": ("mlops_nb.data.commands", "Data versions: what a snapshot holds, export one to a file, diff two."),
    "reproduce": ("mlops_nb.reproduction.commands", "Re-run RUN_ID (a job run or a tracked cell) in a fresh kernel; exit 0 only when models, metrics and environment match."),
    "gc": ("mlops_nb.data.commands", "Remove snapshot chunks no kept data version lists (registered models' data and recent ones are kept)."),
}  # fmt: skip


class _Group(click.Group):
    """Loads each sub-command when it runs; turns mlops_nb errors into one clear line and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        from .lean_imports import skip_unused_format_checkers

        skip_unused_format_checkers()  # `run`, `validate`, `batch` read notebooks: 1 s less each
        return next(c for c in importlib.import_module(COMMANDS[name][0]).COMMANDS if c.name == name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing from the table: importing every feature to print one line each is what made --help slow.
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shortened(COMMANDS[name][1], limit)) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlopsError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


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
    from .tracking.spool import reason_text, replay

    try:
        written, why = replay(config.store_url())
    except Exception as exc:  # the command itself will say what is wrong with the registry
        written, why = 0, reason_text(exc)
    if written:
        click.echo(f"mlops: wrote {written} record(s) that waited in the local spool", err=True)
    if why:
        click.echo(f"mlops: records still wait in the local spool ({why}); see mlops-nb status", err=True)


#: Commands that may create a registry where none exists (``schedule add`` says so itself).
CREATES_REGISTRY = {"run", "batch", "validate", "scheduler"}


if __name__ == "__main__":  # pragma: no cover
    main()
