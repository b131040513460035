"""``%mlops`` and ``%%mlops``: argument parsing and display over the Python API."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from . import config
from .autotrack import AutoTracker
from .errors import MlopsError, RecordingError
from .magic_parsing import parse
from .tracked_cells import CellHooks

# capture/tracking/store (pandas, SQLAlchemy) are imported on first use: %load_ext stays fast.

# Sub-commands implemented next to the feature they drive: "module:function",
# each called as function(shell, line) and parsing its own arguments.
EXTERNAL_COMMANDS = {
    "drift": "mlops_nb.drift.magic:drift_command",
    "validate": "mlops_nb.jobs.magic:validate_command",
    "run": "mlops_nb.jobs.magic:run_command",
    "monitor": "mlops_nb.monitoring.magic:monitor_command", "alerts": "mlops_nb.monitoring.magic:alerts_command_magic",
    **{
        name: f"mlops_nb.registry.magic:{name}_command"
        for name in ("register", "models", "versions", "promote", "approve", "rollback", "audit", "registry")
    },
}

HELP = """\
%load_ext mlops_nb, then:
  %%mlops track [--name N] [--tag k=v]… [--no-data] [--no-models]   record what the cell reads and produces
  %mlops init [--project P] [--store URL] [--artifacts URL]            choose project and registry
  %mlops runs [--filter F] [--order-by O] [--last N] [--all]         the RunsPanel (search, sort, compare)
  %mlops show RUN_ID                                                  one run in full
  %mlops lineage run:ID|data:DIGEST|model:DIGEST                      where it came from, what used it
  %mlops autotrack on|off                                             record every cell that yields a model or metric
  %mlops drift REF CUR [--columns a,b] [--method M] [--threshold X] [--save]
  %mlops validate NOTEBOOK [-p NAME VALUE]… [--rtol X] [--timeout S]  can this notebook become a job?
  %mlops run NOTEBOOK [-p NAME VALUE]… [--timeout S] [--kernel K]     run a notebook as a recorded job (in a subprocess)
  %mlops register VAR|DIGEST --name N [--alias A]                    add a model as the next version of N
  %mlops models | %mlops versions NAME                                registered models, versions and aliases
  %mlops promote NAME VERSION ALIAS [--reason R]                      move an alias through the policy's gates
  %mlops approve REQUEST_ID | %mlops rollback NAME ALIAS              approve a promotion, undo the last move
  %mlops audit [NAME] [--verify [--head ID:HASH]]                     the audit trail
  %mlops registry [NAME]                                              the RegistryPanel
  %mlops monitor add|list|history|check|remove …                      model monitors: drift/metric checks that retrain
  %mlops alerts [--monitor NAME]                                      what the monitors decided, and why
  %mlops help                                                         this text
Python API: mlops_nb.track, log_metric, log_param(s), log_model, runs, load_model, drift,
validate, run_notebook, batch, schedule.  Command line: mlops-nb --help."""


@magic_arguments()
@argument("--name", help="run name")
@argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="label the run (repeatable)")
@argument("--no-data", action="store_true", help="do not record data versions")
@argument("--no-models", action="store_true", help="do not record fitted estimators")
def _track_args(line):
    """%%mlops track: record what this cell reads and produces."""


@magic_arguments()
@argument("--project", help="project new runs belong to")
@argument("--store", help="SQLAlchemy URL of the registry database")
@argument("--artifacts", help="fsspec URL of the artifact folder")
def _init_args(line):
    """%mlops init: choose the project and the registry."""


@magic_arguments()
@argument("--last", type=int, help="only the N newest runs")
@argument("--name", help="only runs with this name")
@argument("--status", choices=["running", "finished", "failed", "interrupted"])
@argument("--project", help="only runs of this project (default: the current one)")
@argument("--all", dest="all_projects", action="store_true", help="runs of every project")
@argument("--filter", help="run search filter, e.g. \"metrics.accuracy > 0.9 and params.C = 1\"")
@argument("--order-by", action="append", help="e.g. 'metrics.accuracy desc' (repeatable)")
def _runs_args(line):
    """%mlops runs: recorded runs (the RunsPanel), newest first."""


@magic_arguments()
@argument("run_id", help="run id or a unique prefix of it")
def _show_args(line):
    """%mlops show: one run in full."""


@magic_arguments()
@argument("ref", help="run:ID, data:DIGEST or model:DIGEST (a unique prefix is enough)")
def _lineage_args(line):
    """%mlops lineage: trace a run, data version or model version."""


@magic_arguments()
@argument("state", choices=["on", "off"])
def _autotrack_args(line):
    """%mlops autotrack: record every cell that produces a model or a metric."""


#: What shlex says about an unterminated quote or a trailing backslash.
_SHLEX_ERRORS = {"No closing quotation", "No escaped character"}


def _parse(spec, line: str):
    # The one parse point of the built-in sub-commands: shell-like splitting, and a quoting
    # mistake (an unterminated quote) is a one-line UsageError rather than a ValueError.
    return parse(spec, line, spec.__name__.strip("_").removesuffix("_args"))


def parse_track_options(line: str) -> tuple[str | None, dict[str, str], bool, bool] | None:
    """(name, tags, record data, record models) of ``%%mlops track`` arguments; None after ``--help``.

    Raises UsageError for bad arguments.
    """
    args = _parse(_track_args, line)
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


@magics_class
class MlopsMagics(Magics):
    """The ``%mlops`` line magic and ``%%mlops`` cell magic."""

    def __init__(self, shell) -> None:
        super().__init__(shell)
        self.hooks = CellHooks(shell)
        self.autotracker = AutoTracker(shell, self.hooks.ledger)
        self.hooks.install()

    @line_cell_magic
    def mlops(self, line: str, cell: str | None = None) -> Any:
        """MLOps in the notebook; ``%mlops help`` lists the sub-commands."""
        __tracebackhide__ = True
        command, _, rest = line.strip().partition(" ")
        if cell is not None:
            if command != "track":
                raise UsageError(f"%%mlops supports only 'track' as a cell magic, got {command!r}. See %mlops help.")
            return self._track(rest, cell)
        handler = getattr(self, f"_cmd_{command}", None)
        try:
            if handler is not None:
                return handler(rest)
            if command in EXTERNAL_COMMANDS:
                module, _, function = EXTERNAL_COMMANDS[command].partition(":")
                return getattr(importlib.import_module(module), function)(self.shell, rest)
        except MlopsError as exc:
            raise UsageError(str(exc)) from None
        except ValueError as exc:
            if str(exc) not in _SHLEX_ERRORS:
                raise
            # a sub-command that splits its line itself met a quoting mistake
            raise UsageError(f"%mlops {command}: cannot read the line ({exc}); check the quotes.") from None
        if command == "track":
            raise UsageError("track is a cell magic: start the cell with %%mlops track.")
        raise UsageError(f"Unknown %mlops command {command!r}. See %mlops help.")

    # ---- %%mlops track ------------------------------------------------------------
    def _track(self, line: str, cell: str) -> None:
        """Cells run through ``run_cell`` are tracked by :class:`CellHooks`; this is the
        fallback for direct ``run_cell_magic`` calls and silent cells."""
        __tracebackhide__ = True
        options = parse_track_options(line)
        if options is None:
            return
        if not cell.strip():
            raise UsageError("%%mlops track needs code in the cell below the magic line.")
        from .capture import CellCapture
        from .cells import cell_number, check_trackable, execute_cell
        from .tracking import Run

        name, tags, data, models = options
        shell = self.shell
        transformed = shell.transform_cell(cell)
        check_trackable(transformed)
        try:
            run = Run(name, tags=tags, source=cell, execution_count=cell_number(shell), namespace=shell.user_ns)
            capture = CellCapture(transformed, shell.user_ns, data=data, models=models, known=run.store.has_profile)
            run.watch(capture)
        except MlopsError as exc:
            raise UsageError(f"mlops cannot track this cell: {exc}") from None
        except SyntaxError:
            execute_cell(shell, cell)  # let Python report the syntax error as usual
            return
        try:
            with run:
                execute_cell(shell, cell)
                run.collect(capture)
        except RecordingError as exc:
            raise UsageError(str(exc)) from None
        except BaseException:
            run.print_summary(to_stderr=True)
            raise
        run.print_summary()

    # ---- line sub-commands ------------------------------------------------------------
    def _cmd_init(self, line: str) -> None:
        args = _parse(_init_args, line)
        if args is None:
            return
        from .store import get_store

        previous = dataclasses.replace(config.settings)
        config.init(project=args.project, store=args.store, artifacts=args.artifacts)
        try:
            store = get_store()  # opened now, so a bad URL is reported here, not at the next run
        except MlopsError:
            config.settings.__dict__.update(previous.__dict__)  # keep the working configuration
            raise
        print(f"mlops: project {config.project_name()!r}, registry {store.url}, artifacts {store.artifacts.url}")

    def _cmd_runs(self, line: str):
        args = _parse(_runs_args, line)
        if args is None:
            return None
        if args.last is not None and args.last < 1:
            raise UsageError("--last must be a positive number of runs.")
        from .search.grammar import quote
        from .widgets.runs_panel import PAGE_SIZE, RunsPanel

        clauses = [args.filter] if args.filter else []
        clauses += [f"{field} = {quote(value)}" for field, value in (("name", args.name), ("status", args.status)) if value]
        project = "*" if args.all_projects else args.project
        # The panel checks the filter before it is shown: a bad one is a UsageError, not a panel.
        return RunsPanel(filter=" and ".join(clauses), order_by=args.order_by, project=project,
                         page_size=args.last or PAGE_SIZE, strict=True)  # fmt: skip

    def _cmd_show(self, line: str) -> None:
        args = _parse(_show_args, line)
        if args is None:
            return
        from .report import run_report
        from .store import get_store

        print(run_report(get_store().get_run(args.run_id)))

    def _cmd_lineage(self, line: str):
        args = _parse(_lineage_args, line)
        if args is None:
            return None
        from .lineage import lineage

        return lineage(args.ref)

    def _cmd_autotrack(self, line: str) -> None:
        args = _parse(_autotrack_args, line)
        if args is None:
            return
        if args.state == "on":
            self.autotracker.enable()
            print("mlops: autotrack on: cells that produce a model or a metric are recorded.")
        else:
            self.autotracker.disable()
            print("mlops: autotrack off.")

    def _cmd_help(self, line: str) -> None:
        print(HELP)

    _cmd_ = _cmd_help  # a bare %mlops
