"""``%mlops`` and ``%%mlops``: argument parsing and display over the Python API."""

from __future__ import annotations

import importlib
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .errors import MlopsError, RecordingError
from .magic_parsing import parse
from .tracking.autotrack import AutoTracker
from .tracking.hooks import CellHooks
from .tracking.options import parse_track_options

# capture/tracking/store (pandas, SQLAlchemy) are imported on first use: %load_ext stays fast.

# Sub-commands implemented next to the feature they drive: "module:function",
# each called as function(shell, line) and parsing its own arguments.
EXTERNAL_COMMANDS = {
    "init": "mlops_nb.tracking.magic:init_command", "show": "mlops_nb.tracking.magic:show_command",
    "status": "mlops_nb.tracking.magic:status_command",
    "runs": "mlops_nb.search.magic:runs_command", "lineage": "mlops_nb.charts.magic:lineage_command",
    "pipeline": "mlops_nb.charts.magic:pipeline_command",
    "drift": "mlops_nb.drift.magic:drift_command",
    "validate": "mlops_nb.jobs.magic:validate_command",
    "run": "mlops_nb.jobs.magic:run_command",
    "monitor": "mlops_nb.monitoring.magic:monitor_command", "alerts": "mlops_nb.monitoring.magic:alerts_command_magic",
    "data": "mlops_nb.data.magic:data_command", "reproduce": "mlops_nb.reproduction.magic:reproduce_command",
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
  %mlops status                                                       records waiting to reach an unreachable registry
  %mlops lineage run:ID|data:DIGEST|model:NAME@ALIAS [--text]        where it came from, what used it (a graph)
  %mlops pipeline [--notebook PATH]                                   the pipeline this notebook's tracked cells form
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
  %mlops data get REF [--as VAR] | data diff A B [--key K]… | data show REF
                                                                      a data version back (data:, run:ID/NAME, model:N@A/train), diffs
  %mlops reproduce RUN_ID [--rtol X]                                  re-run it in a fresh kernel: same models and metrics?
  %mlops help                                                         this text
Python API: mlops_nb.track, log_metric, log_param(s), log_model, runs, load_model, drift,
snapshot, load_data, validate, run_notebook, batch, schedule.  Command line: mlops-nb --help."""


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
        from .tracking.capture import CellCapture
        from .tracking.cells import cell_number, check_trackable, execute_cell
        from .tracking.run import Run

        name, tags, data, models = options
        shell = self.shell
        transformed = shell.transform_cell(cell)
        check_trackable(transformed)
        try:
            run = Run(name, tags=tags, source=cell, execution_count=cell_number(shell), namespace=shell.user_ns)
            capture = CellCapture(transformed, shell.user_ns, data=data, models=models, known=run.known_profile)
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
