#!/usr/bin/env python3
"""Check that the project's packages import only downwards and that no modules import each other in a circle.

Layers, lowest first: ``tdn`` (model, checkpoints, transforms, video I/O, training), ``pipelines``
(live sources ... sinks), ``app`` (the Gradio UI), ``cli`` (the ``tdn`` command). A module may
import its own layer and those below it. Every import counts, also one inside a function and a
module named to ``importlib.import_module`` as a string constant (dispatching by name is still a
dependency).

    python scripts/check_layers.py          # prints each violation and circle; exit 1 if any
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("tdn", "pipelines", "app", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for layer in LAYERS if (ROOT / layer).is_dir() for p in (ROOT / layer).rglob("*.py")}


def imported_names(path: Path, module: str, known: set[str]) -> set[str]:
    """Every module name ``path`` imports (absolute, relative resolved) or names in a string (one of ``known``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # "from pkg import module"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            names.add(node.value)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    known = {m for m in modules if "." in m}
    return {m: {n for n in imported_names(p, m, known) if n in modules and n != m} for m, p in modules.items()}


def layer_of(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{m} ({LAYERS[layer_of(m)]}) imports {n} ({LAYERS[layer_of(n)]}), a higher layer"
            for m, targets in sorted(graph.items()) for n in sorted(targets) if layer_of(n) > layer_of(m)]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(1000, 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    graph = import_graph(project_modules())
    problems = upward_imports(graph) + [f"import circle: {' <-> '.join(c)}" for c in circles(graph)]
    for problem in problems:
        print(problem)
    print(f"{len(graph)} modules in {', '.join(LAYERS)}: "
          + ("layers point down, no circles" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
