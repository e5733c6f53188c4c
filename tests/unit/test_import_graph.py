"""No import cycles in pyoci/ (issue 15): each module's imports, read with `ast` (function-level
imports included: a lazy import is still a dependency), form a graph that must be acyclic, so
the modules can be read and tested bottom-up. A cycle found is printed as `a -> b -> a`."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "pyoci"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """module → the pyoci modules it imports (anywhere in its body)."""
    paths = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:  # `from pyoci.linux import sysbind` names a module
                    sub = f"{base}.{alias.name}"
                    deps.add(sub if sub in paths else base)
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a path
    through it that returns to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(_path_through(graph, set(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest walk from the component's first module back to it (for the message)."""
    start = min(component)
    paths = [[start, dep] for dep in sorted(graph[start] & component)]
    while paths:
        path = paths.pop(0)
        if path[-1] == start:
            return path
        nexts = sorted(graph[path[-1]] & component)
        paths += [[*path, dep] for dep in nexts if dep not in path[1:]]
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    """The reader itself: a function-level import is an edge (the runtime imports lazily)."""
    graph = import_graph()
    assert "pyoci.linux.sysbind" in graph["pyoci.linux.rootfs"]  # inside functions only
    assert "pyoci.linux.syscalls" in graph["pyoci.linux.sysbind"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in pyoci/:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_is_reached_only_through_a_module_getattr() -> None:
    """A module-level `__getattr__` hides imports from readers and from `grep`: only the
    package's public names (`pyoci.Container`, ...) resolve lazily that way, and each module
    they name is also imported by name somewhere, so it is in the graph above."""
    graph = import_graph()
    imported = set().union(*graph.values())
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        if not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            continue
        assert path == PKG / "__init__.py", f"{path}: a module-level __getattr__"
        lazy = next(
            n.value
            for n in tree.body
            if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_LAZY"
        )
        for target in ast.literal_eval(lazy).values():
            assert target[0] in imported, f"{target[0]} is reached only through pyoci.__getattr__"
