"""The package layers (docs/architecture.md, "Package layers"): no import cycle between tapeout's packages, and
the runtime never imports fitting or validation code. Static: every ``import`` statement of every module,
those inside functions (lazy) and under ``TYPE_CHECKING`` included, read with :mod:`ast`."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "tapeout"
ROOT = "tapeout"  # tapeout/__init__.py: the lazy facade (predict, simulate, load_*)
#: offline packages: they read measured data and write the fitted store
OFFLINE = frozenset({"fit", "validate"})
#: the command-line entry modules that dispatch to the offline packages (``tapeout fit``, ``tapeout validate``)
ENTRY = frozenset({"cli"})


def _unit(module: str) -> str:
    """``tapeout.perf.tiled.mapper`` -> ``perf``; ``tapeout.api`` -> ``api``; ``tapeout`` -> ROOT."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def _imported(node: ast.AST, package: list[str]) -> list[str]:
    """The tapeout modules an import node (or an ``import_module("...")`` call) names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = package[: len(package) - node.level + 1] if node.level else []
        mod = ".".join(base + ([node.module] if node.module else []))
        # ``from tapeout import api`` names the module tapeout.api; ``from tapeout import predict`` the package
        return [f"{mod}.{a.name}" if _is_module(f"{mod}.{a.name}") else mod for a in node.names]
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "import_module" \
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return [node.args[0].value]
    return []


def import_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> ["module:line", ...] (units: the subpackages and top-level modules of tapeout)."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        package = parts if path.name == "__init__.py" else parts[:-1]  # what a relative import starts from
        module = ".".join(parts)
        src = _unit(module)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, package):
                if target != ROOT and not target.startswith(ROOT + "."):
                    continue
                dst = _unit(target)
                if dst != src:
                    edges[src][dst].append(f"{module}:{node.lineno}")
    return edges


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, list[str]]]:
    return import_graph()


def test_the_analysis_sees_lazy_relative_and_type_checking_imports(graph):
    # cli imports fit and validate only inside its commands' functions
    assert "fit" in graph["cli"] and "validate" in graph["cli"]
    assert any(":" in where for where in graph["cli"]["fit"])
    # `from tapeout import load_hardware` (a name, not a module) is an edge to the package root
    assert ROOT in graph["validate"]
    # a known edge of the layering, and none the other way
    assert "models" in graph["workload"] and "workload" not in graph.get("models", {})
    assert cycles({"a": {"b": []}, "b": {"c": []}, "c": {"a": []}, "d": {"a": []}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_packages(graph):
    found = cycles(graph)
    detail = [{a: {b: graph[a][b][:3] for b in comp if b in graph[a]} for a in comp} for comp in found]
    assert found == [], detail


def test_runtime_packages_never_import_fitting_or_validation_code(graph):
    offenders = {src: {dst: graph[src][dst] for dst in OFFLINE & set(graph[src])}
                 for src in graph if src not in OFFLINE | ENTRY and OFFLINE & set(graph[src])}
    assert offenders == {}


def test_the_numerics_and_the_judge_sit_outside_the_runtime_layers(graph):
    # the bit-exact codec and safetensors reader (quantize-error) need no op graph and no device
    assert set(graph["numerics"]) <= {"dtypes", "errors"}
    # only the command line reaches the numerics
    assert sorted(src for src in graph if "numerics" in graph[src]) == ["cli"]
