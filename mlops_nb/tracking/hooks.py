"""``%%mlops track`` cells executed by IPython itself, so they behave as untracked cells.

A cell magic runs the cell's code from inside a function call: the traceback
gains that frame, the ``Cell In[N]`` label and line numbers shift, and
IPython's display rules (a trailing ``;`` hides the value) look at the magic
call rather than the user's code.  Instead, an input transformer turns the
``%%mlops track …`` line into a comment — the cell's code then runs through
``InteractiveShell.run_cell`` unchanged — and the documented
``pre_run_cell``/``post_run_cell`` events record the run around it.

Cells that do not go through ``run_cell`` with events (``silent=True``, a
direct ``run_cell_magic`` call) still reach the ``%%mlops`` magic, which runs
them as before.  The same events keep the session :class:`~.staleness.Ledger`
of which cell defined which name, for stale-input warnings.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .cells import Nesting, contained
from .staleness import Ledger, cell_number_before

_TRACK_LINE = re.compile(r"^%%mlops[ \t]+track(?:[ \t]+(?P<args>.*))?$")


def track_arguments(first_line: str) -> str | None:
    """The argument text of a ``%%mlops track`` line, or None for any other line."""
    match = _TRACK_LINE.match(first_line.rstrip("\r\n").rstrip())
    return None if match is None else (match.group("args") or "")


class CellHooks:
    """Input transformer and cell events of one shell (installed by ``%load_ext``)."""

    def __init__(self, shell, autotracker=None) -> None:
        self.shell = shell
        self.ledger = Ledger(shell)
        self.autotracker = autotracker
        self._pending: Any = None  # (run, capture, info) of the running tracked cell
        self._nesting = Nesting()
        self.installed = False

    # ---- installation ------------------------------------------------------------
    def install(self) -> None:
        if self.installed:
            return
        self.shell.input_transformer_manager.line_transforms.insert(0, self.transform)
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self.installed = True
        # No import warm-up on a thread: importing scikit-learn from two threads at once
        # breaks its circular imports ("partially initialized module"); measured, not guessed.

    def uninstall(self) -> None:
        if not self.installed:
            return
        transforms = self.shell.input_transformer_manager.line_transforms
        if self.transform in transforms:
            transforms.remove(self.transform)
        self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
        self.shell.events.unregister("post_run_cell", self.post_run_cell)
        self._abandon()
        self.installed = False

    # ---- the input transformer ------------------------------------------------------
    def transform(self, lines: list[str]) -> list[str]:
        """Comment out a valid ``%%mlops track`` line; leave anything else to IPython.

        Invalid arguments or an empty body are left to the magic, which
        reports them as a UsageError.  The comment keeps line numbers equal
        to the ones the user sees.  A body that starts with another cell magic
        (``%%time``, ``%%capture``) is handed to it, as IPython would the cell.
        """
        if not lines or not lines[0].startswith("%%mlops"):
            return lines
        args = track_arguments(lines[0])
        if args is None or not "".join(lines[1:]).strip() or _options(args) is None:
            return lines
        if lines[1].startswith("%%"):
            from IPython.core.inputtransformer2 import cell_magic

            return ["# " + lines[0], *cell_magic(lines[1:])]
        return ["# " + lines[0], *lines[1:]]

    # ---- events ---------------------------------------------------------------------
    @contained
    def pre_run_cell(self, info=None) -> None:
        outermost = self._nesting.enter(info)
        if not outermost and self._pending is not None:
            return  # run by the tracked cell itself (%%capture): part of it
        if outermost:
            self._abandon()
            from .writer import report

            report()  # what earlier background writes could not record
            self.ledger.observe_meta(getattr(info, "cell_meta", None))
            self.ledger.before(info)
        # A cell run from inside an untracked one (%rerun of a tracked cell) is tracked itself.
        raw = getattr(info, "raw_cell", None) or ""
        first, _, body = raw.lstrip("\r\n").partition("\n")
        args = track_arguments(first) if first.startswith("%%mlops") else None
        if args is None:
            return
        transformed = getattr(info, "transformed_cell", None) or self.shell.transform_cell(raw)
        if not transformed.startswith("# %%mlops"):
            return  # the magic will run it (and report bad arguments)
        options = _options(args)
        if options is None:
            return
        from ..errors import MlopsError
        from .capture import CellCapture
        from .run import Run

        name, tags, data, models = options
        try:
            run = Run(
                name, tags=tags, source=body, namespace=self.shell.user_ns,
                execution_count=cell_number_before(self.shell, info),
            )  # fmt: skip
            background = _background(self.shell)
            capture = CellCapture(
                transformed, self.shell.user_ns, data=data, models=models, known=profile_known(run, background),
                defer_profiles=background,  # built when the cell has run (only inputs it left unchanged)
            )  # fmt: skip
            run.watch(capture)
            run.lineage_warnings = self.ledger.check(capture.names.reads, info)
            run.persist_start = not background
            run.__enter__()
            self._pending = (run, capture, info)
            if background:
                from .writer import submit

                submit(run.start_message(), f"the start of run {run.id[:8]}")  # git state and a commit, off the cell
                run._inserted = True
        except SyntaxError:
            return  # IPython reports it when it compiles the cell
        except MlopsError as exc:
            self._abandon()
            print(f"mlops: this cell runs untracked: {exc}", file=sys.stderr)

    @contained
    def post_run_cell(self, result=None) -> None:
        outermost = self._nesting.leave(result)
        info = getattr(result, "info", None)
        pending = self._pending
        try:
            if pending is not None and (outermost or pending[2] is info):
                self._finish(pending[0], pending[1], result)
                self._pending = None
        finally:
            if outermost:
                self.ledger.record(info, result)

    def _finish(self, run, capture, result) -> None:
        from ..errors import MlopsError
        from .shown_metrics import add_shown_metrics

        error = None
        if result is not None:
            error = result.error_before_exec or result.error_in_exec
            run.execution_count = getattr(result, "execution_count", None) or run.execution_count
        background = not run.persist_start
        try:
            if error is None:
                run.collect(capture, defer_models=background)
                add_shown_metrics(run, capture, getattr(result, "result", None))
            if background:
                capture.complete_profiles()
                finish_in_background(run, error)
            else:
                run.__exit__(type(error) if error else None, error, None)
        except MlopsError as exc:
            print(f"mlops: {exc}", file=sys.stderr)
            return
        run.print_summary(to_stderr=error is not None)

    def _abandon(self) -> None:
        """Drop a run whose cell never reported back (an interrupted or silent cell)."""
        if self._pending is not None:
            self._pending[0].discard()
            self._pending = None

    def _fail(self, exc: Exception) -> None:
        """End the pending run after an error of ours: failed, saying why, if its start is stored."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        run = pending[0]
        run.deactivate()
        if not (run.persist_start or run._inserted):
            return run.discard()
        from ..errors import RecordingError

        error = RecordingError(f"mlops_nb could not record this cell: {type(exc).__name__}: {exc}", run_id=run.id)
        try:
            if run.persist_start:
                run.finish(error)
            else:
                finish_in_background(run, error)
        except Exception:  # the record cannot be written either: the reaper ends it with the kernel
            run.discard()


def _background(shell) -> bool:
    from .writer import background_writes

    return background_writes(shell)


def finish_in_background(run, error: BaseException | None) -> None:
    """End ``run`` now (status, duration: the summary line is right) and write it in the background.

    Its models are pickled now, so that what the next cells do to them cannot
    change what is recorded.
    """
    from .records import profiled
    from .writer import submit

    run.deactivate()
    run.conclude(error)
    snapshots = run.plan_snapshots()
    submit(run.finish_message(snapshot=True), f"run {run.id[:8]}")
    run.write_snapshots(snapshots, send=submit)  # their records follow the run's, in the recorder
    records = [*run.inputs.values(), *run.outputs.values()]
    profiled.update(r["digest"] for r in records if r.get("profile") is not None)


def profile_known(run, background: bool):
    """``known(digest)`` for a capture: whether a data version needs no new profile.

    In the background the store is not asked (that would open it in the
    kernel): a version is profiled once per session.
    """
    if background:
        from .records import profiled

        return profiled.__contains__
    return run.known_profile


def _options(args: str) -> tuple[str | None, dict[str, str], bool, bool] | None:
    """(name, tags, data, models) of valid ``track`` arguments, else None."""
    from IPython.core.error import UsageError

    from .options import parse_track_options

    try:
        return parse_track_options(args)
    except (UsageError, ValueError):
        return None
