"""``%mlops autotrack``: the capture of ``%%mlops track`` on every executed cell.

Uses only IPython's documented events (``pre_run_cell(info)``,
``post_run_cell(result)``); silent cells fire none, and ``result`` may be None.
Only cells that produce a model or a metric are stored.
"""

from __future__ import annotations

import warnings

from ..errors import MlopsError
from .cells import Nesting, contained
from .staleness import cell_number_before


class AutoTracker:
    """Registers and unregisters the cell event callbacks of one shell."""

    def __init__(self, shell, ledger=None) -> None:
        self.shell = shell
        self.ledger = ledger  # the session's definitions, for stale-input warnings
        self.enabled = False
        self._pending = None  # (Run, CellCapture) of the running cell
        self._nesting = Nesting()

    def enable(self) -> None:
        if not self.enabled:
            self.shell.events.register("pre_run_cell", self.pre_run_cell)
            self.shell.events.register("post_run_cell", self.post_run_cell)
            self.enabled = True

    def disable(self) -> None:
        if self.enabled:
            self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
            self.shell.events.unregister("post_run_cell", self.post_run_cell)
            self.enabled = False
        self._abandon()

    @contained
    def pre_run_cell(self, info=None) -> None:
        if not self._nesting.enter(info):
            return  # run by the cell itself (%%capture): part of that cell
        self._abandon()
        raw = getattr(info, "raw_cell", None) or ""
        if not raw.strip() or raw.lstrip().startswith(("%mlops", "%%mlops")):
            return
        from .capture import CellCapture
        from .run import Run, active_run

        if active_run() is not None:
            return
        try:
            source = getattr(info, "transformed_cell", None) or self.shell.transform_cell(raw)
            run = Run(source=raw, execution_count=cell_number_before(self.shell, info), namespace=self.shell.user_ns)
            run.persist_start = False  # stored only if the cell yields a model or metric
            from .hooks import profile_known
            from .writer import background_writes

            capture = CellCapture(
                source, self.shell.user_ns, known=profile_known(run, background_writes(self.shell)),
                defer_profiles=True, lazy_data=True,
            )  # fmt: skip  (most cells are discarded: hash their data only once the run is kept)
            run.watch(capture)
            if self.ledger is not None:
                run.lineage_warnings = self.ledger.check(capture.names.reads, info)
            run.__enter__()
            self._pending = (run, capture)
        except SyntaxError:
            return
        except MlopsError as exc:
            warnings.warn(f"mlops autotrack: cell not tracked: {exc}", stacklevel=1)

    @contained
    def post_run_cell(self, result=None) -> None:
        if not self._nesting.leave(result) or self._pending is None:
            return
        self._finish(*self._pending, result)
        self._pending = None  # not before: after an error of ours, _fail still has the run

    def _finish(self, run, capture, result) -> None:
        error = None
        if result is not None:
            error = result.error_before_exec or result.error_in_exec
            # The cell's own number; at pre_run_cell IPython 9 has already moved the counter on.
            run.execution_count = getattr(result, "execution_count", None) or run.execution_count
        try:
            from .writer import background_writes

            background = background_writes(self.shell)
            if error is None:
                from .shown_metrics import add_shown_metrics

                run.collect(capture, defer_models=background)
                add_shown_metrics(run, capture, getattr(result, "result", None))
            if not run.has_results:
                run.discard()
                return
            capture.complete_data()
            run.inputs.update(capture.inputs)
            run.outputs.update(capture.outputs)
            capture.complete_profiles()
            if background:
                from .hooks import finish_in_background

                finish_in_background(run, error)
            else:
                run.__exit__(type(error) if error else None, error, None)
        except MlopsError as exc:
            warnings.warn(f"mlops autotrack: run not recorded: {exc}", stacklevel=1)
            return
        run.print_summary(to_stderr=error is not None)

    def _abandon(self) -> None:
        """Drop a capture whose cell never reported back (e.g. an interrupted cell)."""
        if self._pending is not None:
            self._pending[0].discard()
            self._pending = None

    def _fail(self, exc: Exception) -> None:
        """Drop the cell's run after an error of ours (nothing of it is stored yet)."""
        self._abandon()
