"""Running a cell's code the way IPython runs it, from inside a cell magic."""

from __future__ import annotations

import ast
import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

# Cell magics that execute their body as Python in the user namespace, as the cell would.
_RUNS_BODY_HERE = frozenset({"time", "capture", "prun"})


@functools.lru_cache(maxsize=64)
def parsed(source: str) -> ast.Module:
    """The AST of the Python a (transformed) cell runs, shared by the capture and the
    staleness ledger (treat as read-only).

    A cell handed whole to ``%%time``, ``%%capture`` or ``%%prun`` is IPython's
    ``run_cell_magic(...)`` call with the code in a string: the code is that body.
    """
    tree = ast.parse(source)
    body = _cell_magic_body(tree)
    return tree if body is None else parsed(_transformer().transform_cell(body))


def _cell_magic_body(tree: ast.Module) -> str | None:
    """The body of a lone ``get_ipython().run_cell_magic(name, line, body)`` for the magics above."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    call = tree.body[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run_cell_magic"):
        return None
    args = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
    if len(args) == 3 and args[0] in _RUNS_BODY_HERE and isinstance(args[2], str):
        return args[2]
    return None


@functools.cache
def _transformer():
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


class Nesting:
    """Tells the cells a user runs from cells run inside them.

    ``%%capture`` runs its body with ``shell.run_cell``, which fires the cell
    events again inside the outer cell's; only the outermost cell is tracked.
    ``post_run_cell`` fires for every cell (from a ``finally``), ``pre_run_cell``
    not for an empty one: a ``result`` whose ``info`` is not open closes nothing.
    """

    def __init__(self) -> None:
        self._open: list[Any] = []

    def enter(self, info: Any) -> bool:
        """Note a ``pre_run_cell``; whether it is the outermost cell."""
        self._open.append(info)
        return len(self._open) == 1

    def leave(self, result: Any) -> bool:
        """Note a ``post_run_cell``; whether it ends the outermost cell."""
        if self._open and self._open[-1] is getattr(result, "info", None):
            self._open.pop()
        return not self._open


def contained(hook: Callable[..., None]) -> Callable[..., None]:
    """A cell-event method whose unexpected errors end in one line, not in IPython's callback traceback.

    The cell itself has run (or will) as usual; the owner's ``_fail(exc)``
    closes whatever run it holds.  ``MLOPS_NB_DEBUG=1`` lets the error through.
    """

    @functools.wraps(hook)
    def guarded(self, *args: Any) -> None:
        try:
            hook(self, *args)
        except Exception as exc:
            if os.environ.get("MLOPS_NB_DEBUG", "").strip() not in ("", "0"):
                raise
            self._fail(exc)
            print(
                f"mlops: this cell was not recorded: {type(exc).__name__}: {exc} (an error in mlops_nb, not in "
                "the cell, which ran as usual). Set MLOPS_NB_DEBUG=1 to see the traceback, and please report it.",
                file=sys.stderr,
            )

    return guarded


def cell_number(shell) -> int | None:
    """The execution count shown for the running cell.

    IPython 9 increments ``shell.execution_count`` before running a cell and
    IPython 8 after, so read the number from the cell's ExecutionResult.
    """
    result = getattr(shell.displayhook, "exec_result", None)
    return getattr(result, "execution_count", None) or shell.execution_count


def execute_cell(shell, source: str) -> None:
    """Run a cell's source in the user namespace as IPython would run it.

    The last expression is displayed as the cell's output; exceptions
    propagate unchanged, and our frames are hidden from the traceback.
    """
    __tracebackhide__ = True
    transformed = shell.transform_cell(source)
    filename = shell.compile.cache(transformed, shell.execution_count, raw_code=source)
    tree = shell.compile.ast_parse(transformed, filename=filename)
    body, last = tree.body, None
    if body and isinstance(body[-1], ast.Expr):
        body, last = body[:-1], body[-1]
    exec(shell.compile(ast.Module(body=body, type_ignores=[]), filename, "exec"), shell.user_global_ns, shell.user_ns)
    if last is not None:
        # A trailing ';' hides the value, as IPython's displayhook would decide for the cell itself.
        mode = "exec" if shell.displayhook.semicolon_at_end_of_expression(transformed) else "single"
        node = ast.Module(body=[last], type_ignores=[]) if mode == "exec" else ast.Interactive(body=[last])
        code = shell.compile(node, filename, mode)
        exec(code, shell.user_global_ns, shell.user_ns)


def check_trackable(transformed: str) -> None:
    """Raise UsageError for cells a cell magic cannot run (top-level ``await``)."""
    if _has_top_level_await(transformed):
        raise UsageError(
            "%%mlops track cannot run top-level `await` (a cell magic runs synchronously). "
            "Put the code in an async function and track it inside: `with mlops_nb.track(): ...`."
        )


def _has_top_level_await(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False  # let compile() report it as Python would
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if not isinstance(node, scopes):
            stack.extend(ast.iter_child_nodes(node))
    return False
