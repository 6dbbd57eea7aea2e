"""No import cycles inside shufflenet_edge/, read from the source (imports inside functions count).

A cycle means two modules share a concept that belongs to neither; it also breaks lazy
imports in ways that only show up in one import order. Edges, from the source of module M:
- ``import a.b.c`` / ``from a.b import c`` -> a.b.c when it is a module, else a.b; importing
  a.b.c also runs the packages a and a.b, so they are edges too, except M's own ancestors
  (already running when M imports anything) unless M names them itself;
- a package's ``importlib.import_module(f"{__name__}.{name}")`` loop imports each of its modules;
- ``from <ancestor package> import __version__`` (dunder constants only) is no edge: the
  package defines those before it imports anything.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = "shufflenet_edge"
ROOT = Path(__file__).resolve().parents[1] / PKG


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _resolve(importer: str, is_pkg: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".") if is_pkg else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _imports_own_submodules_dynamically(node: ast.AST) -> bool:
    """``importlib.import_module(f"{__name__}.{x}")`` in a package: a plugin loop over its modules."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args):
        return False
    arg = node.args[0]
    return (isinstance(arg, ast.JoinedStr) and bool(arg.values) and isinstance(arg.values[0], ast.FormattedValue)
            and getattr(arg.values[0].value, "id", None) == "__name__")


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        own = _ancestors(name)
        targets: set[str] = set()
        explicit_own: set[str] = set()  # ancestors imported by name, for more than a dunder constant
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_pkg, node.level, node.module)
                names = [alias.name for alias in node.names]
                if base in own and all(n.startswith("__") and n.endswith("__") for n in names):
                    continue  # `from .. import __version__`
                subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in mods]
                targets.update(subs)
                if len(subs) < len(names):
                    targets.add(base)
                    if base in own:
                        explicit_own.add(base)
            elif is_pkg and _imports_own_submodules_dynamically(node):
                targets.update(m for m in mods if m.rsplit(".", 1)[0] == name)
        for target in targets:
            if not (target == PKG or target.startswith(PKG + ".")):
                continue
            while target not in mods and "." in target:  # `import a.b.func`-style names
                target = target.rsplit(".", 1)[0]
            for t in {target} | _ancestors(target):
                if t in mods and t != name and (t not in own or t in explicit_own):
                    graph[name].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), as cycles to print."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for comp in comps:  # a shortest cycle through each member, each cycle once
        for member in comp:
            cycle = _shortest_cycle(graph, set(comp), member)
            first = cycle.index(min(cycle[:-1]))
            cycle = cycle[first:-1] + cycle[:first + 1]
            if cycle not in cycles:
                cycles.append(cycle)
    return cycles


def _shortest_cycle(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside one strongly connected component."""
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is on no cycle")


def test_graph_sees_function_level_and_relative_imports():
    g = import_graph()
    assert f"{PKG}.errors" in g[f"{PKG}.models.common"]
    assert f"{PKG}.cli" in g and len(g) > 40
    # the parent package is imported for __version__ only: no edge
    assert PKG not in g[f"{PKG}.export.metadata"]
    # the CLI loads its *_cmd modules in a loop
    assert f"{PKG}.cli.models_cmd" in g[f"{PKG}.cli"]


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(g) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


if __name__ == "__main__":
    for cycle in find_cycles(import_graph()):
        print(" -> ".join(cycle))
