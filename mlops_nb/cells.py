"""Running a cell's code the way IPython runs it, from inside a cell magic."""

from __future__ import annotations

import ast
import functools

from IPython.core.error import UsageError


@functools.lru_cache(maxsize=64)
def parsed(source: str) -> ast.Module:
    """``ast.parse(source)``, shared by the capture and the staleness ledger (treat as read-only)."""
    return ast.parse(source)


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
