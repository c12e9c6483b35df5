"""The import graph of ``src/``: folders are layers, imports only go down, and no module imports itself back.

Lower layers know nothing of higher ones: the networks and data never import the run assembly, the assembly
never imports an entry point, and no entry point imports another. A new folder must be placed in ``LAYERS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
#: lowest first; a module may import its own folder and any folder of a lower layer
LAYERS = [
    {"utils"},
    {"data", "metrics"},
    {"models", "results"},
    {"training", "strategies"},
    {"callbacks", "inference"},
    {"run"},
    {"train", "eval", "restore", "summary", "bench", "analysis", "recipe"},
]


def _unit(module: str) -> str:
    """``src.models.backbones.base`` -> ``models``; ``src.train`` -> ``train``."""
    return module.split(".")[1]


def _layer(unit: str) -> int:
    for i, units in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"src/{unit} is in no layer of tests/test_layers.py: place it there")


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every ``src.*`` module imported anywhere in the file (inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src."):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("src.")}
    return out


MODULES = _modules()
GRAPH = {name: {m for m in _imports(path) if m in MODULES or m.rsplit(".", 1)[0] in MODULES}
         for name, path in MODULES.items() if name != "src"}


def test_imports_only_go_down_the_layers():
    upward = []
    for name, targets in GRAPH.items():
        here = _unit(name)
        for target in targets:
            there = _unit(target)
            if there != here and _layer(there) >= _layer(here):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports into the same or a higher layer:\n" + "\n".join(sorted(upward))


def test_no_module_imports_itself_back():
    def resolve(target: str) -> str:
        return target if target in MODULES else target.rsplit(".", 1)[0]

    edges = {name: {resolve(t) for t in targets} - {name} for name, targets in GRAPH.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("entry", sorted(LAYERS[-1]))
def test_entry_points_import_no_other_entry_point(entry):
    importers = [n for n, t in GRAPH.items() if _unit(n) == entry and any(_unit(x) in LAYERS[-1] - {entry} for x in t)]
    assert not importers
