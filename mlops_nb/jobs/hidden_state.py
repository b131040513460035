"""Static checks for hidden state: cells that only work because of an earlier session.

A notebook edited interactively can use a name that no earlier cell defines
(the cell that defined it was deleted, moved down, or run by hand).  It works
in the author's kernel and fails in a fresh one.  We read the cells in order,
turn IPython syntax into Python with IPython's own transformer, and follow the
names each statement binds and loads.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

import nbformat

#: Names IPython puts in every kernel's namespace.
IPYTHON_NAMES = frozenset(
    {"get_ipython", "display", "In", "Out", "exit", "quit", "_", "__", "___", "_i", "_ii", "_iii",
     "_ih", "_oh", "_dh", "__session__", "__vsc_ipynb_file__"}
)  # fmt: skip
_KNOWN = frozenset(dir(builtins)) | IPYTHON_NAMES
_HISTORY_NAME = re.compile(r"^_i?\d+$")
#: Cell magics whose body is Python run in the user namespace.
PYTHON_CELL_MAGICS = frozenset({"mlops", "time", "timeit", "capture", "prun", "debug"})
#: Line magics that define names we cannot see statically.
OPAQUE_LINE_MAGICS = frozenset({"run", "store", "pylab", "load", "macro", "recall"})


@dataclass(frozen=True)
class HiddenStateIssue:
    """A name used in ``cell`` before any earlier cell defines it."""

    cell: int
    line: int
    name: str
    defined_in: int | None  # a later cell that defines it, if any
    certain: bool  # False after a star import or %run: the name may come from there

    def describe(self) -> str:
        where = f"cell {self.cell}, line {self.line}: {self.name!r} is used before any earlier cell defines it"
        if self.defined_in is not None:
            where += f" (cell {self.defined_in} defines it: run order matters)"
        elif self.certain:
            where += " (nor does any later cell)"
        else:
            where += " (perhaps from a star import or %run)"
        return where


def cell_python(source: str) -> tuple[str, int] | None:
    """Python code of a cell and the line offset of that code; None when not Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    stripped = source.lstrip()
    offset = source[: len(source) - len(stripped)].count("\n")
    if stripped.startswith("%%"):
        first, _, body = stripped.partition("\n")
        magic = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return None  # %%bash, %%html, %%writefile...: not Python
        inner = cell_python(body)
        return None if inner is None else (inner[0], inner[1] + offset + 1)
    return TransformerManager().transform_cell(source), offset


def find_hidden_state(nb: nbformat.NotebookNode) -> tuple[list[HiddenStateIssue], list[str]]:
    """Names used before they are defined, and notes (cells that could not be parsed)."""
    parsed: list[tuple[int, ast.Module, int]] = []
    notes: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code = cell_python(cell.source)
        if code is None:
            continue
        try:
            parsed.append((index, ast.parse(code[0]), code[1]))
        except SyntaxError as exc:
            notes.append(f"cell {index} is not valid Python (line {exc.lineno}): the clean run will report it")
    defined_by_cell = {index: _bound_names(tree) for index, tree, _ in parsed}
    everywhere = set().union(*defined_by_cell.values()) if defined_by_cell else set()

    issues: list[HiddenStateIssue] = []
    known: set[str] = set()
    opaque = False
    deferred: list[tuple[int, int, ast.AST, set[str]]] = []
    for index, tree, offset in parsed:
        scope = _CellScope(known, opaque)
        for statement in tree.body:
            scope.visit(statement)
        opaque = scope.opaque
        for name, line, certain in scope.uses:
            later = next((i for i, names in defined_by_cell.items() if i > index and name in names), None)
            issues.append(HiddenStateIssue(index, line + offset, name, later, certain))
        deferred.extend((index, offset, node, local) for node, local in scope.deferred)
    # Function bodies run when called, possibly after later cells: only a name
    # that no cell ever defines is certainly missing.
    for index, offset, node, local in deferred:
        for name, line in _free_loads(node, local):
            if name not in everywhere and not _is_known(name) and not opaque:
                issues.append(HiddenStateIssue(index, line + offset, name, None, True))
    unique = {(i.cell, i.name): i for i in reversed(issues)}  # first use per cell and name
    return sorted(unique.values(), key=lambda i: (i.cell, i.line)), notes


def execution_order_issues(nb: nbformat.NotebookNode) -> list[str]:
    """Saved execution counts that go backwards: the cells were run out of order."""
    issues, previous = [], None
    for index, cell in enumerate(nb.cells):
        count = cell.get("execution_count") if cell.cell_type == "code" else None
        if count is None:
            continue
        if previous is not None and count <= previous[1]:
            issues.append(f"cell {index} was run as [{count}] after cell {previous[0]} ran as [{previous[1]}]")
        previous = (index, count)
    return issues


def _is_known(name: str) -> bool:
    return name in _KNOWN or bool(_HISTORY_NAME.match(name))


class _CellScope(ast.NodeVisitor):
    """Module-level statements of one cell, visited in evaluation order."""

    def __init__(self, known: set[str], opaque: bool) -> None:
        self.known = known
        self.opaque = opaque
        self.uses: list[tuple[str, int, bool]] = []
        self.deferred: list[tuple[ast.AST, set[str]]] = []

    def _load(self, name: str, line: int) -> None:
        if name not in self.known and not _is_known(name):
            self.uses.append((name, line, not self.opaque))

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.known.add(node.id)
        else:
            self._load(node.id, node.lineno)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            self._load(node.target.id, node.lineno)
        self.visit(node.value)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for statement in node.body + node.orelse:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def _comprehension(self, node, results: list[ast.AST]) -> None:
        saved = set(self.known)
        for generator in node.generators:
            self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for result in results:
            self.visit(result)
        self.known.clear()
        self.known.update(saved)  # comprehension variables do not leak

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(expr)
        self.known.add(node.name)
        self.deferred.append((node, _argument_names(node.args)))

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(expr)
        self.deferred.append((node, _argument_names(node.args)))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expr in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(expr)
        self.known.add(node.name)
        self.deferred.append((node, set()))

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.opaque = True
            else:
                self.known.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.known.add(node.name)
        for statement in node.body:
            self.visit(statement)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self.generic_visit(node)
        if node.name:
            self.known.add(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.known.add(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.generic_visit(node)
        if node.rest:
            self.known.add(node.rest)

    def visit_Call(self, node: ast.Call) -> None:
        magic = _line_magic(node)
        if magic in OPAQUE_LINE_MAGICS:
            self.opaque = True
        self.generic_visit(node)


def _line_magic(node: ast.Call) -> str | None:
    """Name of the magic in ``get_ipython().run_line_magic('name', ...)``."""
    func = node.func
    if (
        isinstance(func, ast.Attribute) and func.attr == "run_line_magic"
        and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
    ):  # fmt: skip
        return node.args[0].value
    return None


def _argument_names(args: ast.arguments) -> set[str]:
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
    return names


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name a piece of code can bind (at any depth; used for 'defined somewhere')."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _free_loads(node: ast.AST, arguments: set[str]) -> list[tuple[str, int]]:
    """Names a function, lambda or class body loads that it does not bind itself."""
    body = node.body if isinstance(node.body, list) else [node.body]
    local = set(arguments)
    for statement in body:
        local |= _bound_names(statement)
    return [
        (n.id, n.lineno)
        for statement in body
        for n in ast.walk(statement)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local
    ]
