"""Fail when the package's imports form a circle or point up a layer.

Reads every module of ``mlops_nb`` with :mod:`ast` (nothing is imported), takes
each ``import``/``from … import`` at any depth (those inside functions too:
a lazy import still ties two modules together; only ``if TYPE_CHECKING:``
blocks are skipped, they never run), and checks two things:

1. no circles: neither the module graph nor the graph of the package's
   folders and top modules (``tracking``, ``registry``, ``store``, ``cli``…)
   has a strongly connected component larger than one node;
2. arrows point down the layers ARCHITECTURE.md draws: faces → features →
   store/fingerprint → ground floor.

Usage: ``python tools/check_imports.py [--graph]``; exit 1 with one line per
problem, 0 when the graph is clean.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "mlops_nb"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# Lower numbers sit lower. A module may import its own layer or any below it.
GROUND, BASE, FEATURE, FACE, TOP = 0, 1, 2, 3, 4
LAYER_NAMES = {GROUND: "ground floor", BASE: "store/fingerprint", FEATURE: "feature", FACE: "face", TOP: "package root"}
GROUND_MODULES = {"config", "errors", "environment", "gitstate", "file_watch", "processes", "report", "magic_parsing", "version", "lean_imports", "allocator", "spares"}
BASE_PACKAGES = {"store", "fingerprint", "profiling", "snapshots"}
FACE_PACKAGES = {"widgets", "server"}
FACE_MODULES = {"magics", "cli", "launcher", "cli_server", "magic", "commands"}  # magic.py / commands.py in any feature folder


def layer(module: str) -> int:
    parts = module.split(".")[1:]
    if not parts:
        return TOP
    if parts[0] in GROUND_MODULES:
        return GROUND
    if parts[0] in BASE_PACKAGES:
        return BASE
    if parts[0] in FACE_PACKAGES or parts[-1] in FACE_MODULES:
        return FACE
    return FEATURE


def module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            stack.append(child)
    return found


def imports_of(path: Path, modules: set[str], root: Path = ROOT) -> dict[str, int]:
    """The package modules ``path`` imports, each with the first line that does."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        # The longest prefix that is one of our modules: `a.b.c` imports `a.b` when c is a name.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.setdefault(target, line)

    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name, node.lineno)
            continue
        if node.level:
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        if base.split(".")[0] != PACKAGE:
            continue
        for alias in node.names:
            add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base, node.lineno)
    return edges


def graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    files = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    return {module_name(p, root): imports_of(p, modules, root) for p in files}


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, {}))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def units(edges: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The graph of the package's top-level folders and modules (``mlops_nb.X``).

    A feature folder's ``magic.py`` and ``commands.py`` are left out: they sit
    with their feature but belong to the faces, which may import the panels
    in ``widgets/`` that read that feature.
    """
    folded: dict[str, dict[str, int]] = {}
    for source, targets in edges.items():
        if source == PACKAGE:
            continue
        if layer(source) == FACE and source.split(".")[1] not in FACE_PACKAGES:
            continue  # a feature's magic.py/commands.py faces the user: the layer rule covers it
        top = ".".join(source.split(".")[:2])
        folded.setdefault(top, {})
        for target, line in targets.items():
            other = ".".join(target.split(".")[:2])
            if other != top and target != PACKAGE:
                folded[top].setdefault(other, line)
    return folded


def upward(edges: dict[str, dict[str, int]]) -> list[str]:
    problems = []
    for source, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            if layer(target) > layer(source) and layer(source) != TOP:
                problems.append(
                    f"{source} (line {line}) imports {target}: a {LAYER_NAMES[layer(source)]} module "
                    f"must not import a {LAYER_NAMES[layer(target)]} module"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="print every module's imports")
    parser.add_argument("--root", type=Path, default=ROOT, help=f"the package folder (default: {ROOT})")
    args = parser.parse_args(argv)
    edges = graph(args.root.resolve())
    if args.graph:
        for source, targets in sorted(edges.items()):
            print(f"{source} -> {', '.join(sorted(targets)) or '-'}")
    problems = []
    module_cycles = cycles(edges)
    for component in module_cycles:
        members = set(component)
        links = [f"{a} -> {b} (line {edges[a][b]})" for a in component for b in sorted(edges[a]) if b in members]
        problems.append("import circle among " + ", ".join(component) + ": " + "; ".join(links))
    if not module_cycles:  # a module circle is also a folder circle: say it once
        folded = units(edges)
        for component in cycles(folded):
            members = set(component)
            links = [f"{a} -> {b}" for a in component for b in sorted(folded[a]) if b in members]
            problems.append("import circle among folders " + ", ".join(component) + ": " + "; ".join(links))
    problems.extend(upward(edges))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} import problem(s); see ARCHITECTURE.md for the layers", file=sys.stderr)
        return 1
    print(f"imports clean: {len(edges)} modules, no circles, every arrow points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
