"""The sandbox's modules import each other without cycles (cli.py and seed.py used to import
each other; the shared control-API client now lives in control_client.py)."""

import ast
import os

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "drsandbox")


def _graph() -> dict[str, set[str]]:
    """module -> sandbox modules it imports (``from .x import``, ``from . import x``), at any depth
    (a lazy import inside a function still makes a cycle once both functions have run)."""
    modules = {f[:-3] for f in os.listdir(PKG) if f.endswith(".py")}
    graph: dict[str, set[str]] = {}
    for mod in sorted(modules):
        with open(os.path.join(PKG, mod + ".py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names if a.name in modules)
        graph[mod] = deps & modules - {mod, "__init__"}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                found.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycles_between_sandbox_modules():
    graph = _graph()
    assert "control_client" in graph["seed"] and "control_client" in graph["cli"]
    assert "cli" not in graph["seed"]
    assert _cycles(graph) == []


def test_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
