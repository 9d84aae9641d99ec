"""Imports point down only: core never imports a method, methods never import each other or the entry points."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sparsenets"
CORE = {
    "errors",
    "files",
    "train",
    "data",
    "models",
    "groups",
    "masks",
    "compact",
    "prox",
    "surgery",
    "optim",
    "pruning",
    "sim",
    "grids",
    "structure",
}
METHODS = {"wgsef", "tickets", "spectral", "sdr", "turbovbi", "giorom"}
COMPARE = {"compare"}  # above the methods: it runs every registered compression adapter
TOP = {"cli", "report", "runs", "experiments", "__main__"}  # runs discovers experiments


def _top_level(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sparsenets."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sparsenets."))
    return names


def test_imports_point_down_only() -> None:
    bad = []
    for path in SRC.rglob("*.py"):
        layer = _top_level(path)
        used = _imported(path) - {layer}
        if layer in CORE and used & (METHODS | COMPARE | TOP):
            bad.append(f"core {path.relative_to(SRC)} imports {sorted(used & (METHODS | COMPARE | TOP))}")
        if layer in METHODS and used & ((METHODS - {layer}) | COMPARE | TOP):
            bad.append(
                f"method {path.relative_to(SRC)} imports {sorted(used & ((METHODS - {layer}) | COMPARE | TOP))}"
            )
        if layer in COMPARE and used & TOP:
            bad.append(f"compare {path.relative_to(SRC)} imports an entry point {sorted(used & TOP)}")
        if layer == "experiments" and used & {"cli", "report"}:
            bad.append(f"experiment {path.relative_to(SRC)} imports an entry point")
    assert not bad, "\n".join(bad)


def test_every_module_is_in_a_known_layer() -> None:
    unknown = {_top_level(p) for p in SRC.rglob("*.py")} - CORE - METHODS - COMPARE - TOP - {"__init__"}
    assert not unknown, f"place these modules in a layer in tests/core/test_layering.py and docs: {unknown}"


ROOT = SRC.parents[1]
MAX_LINES = 400


def test_no_python_file_is_over_the_size_limit() -> None:
    """Small modules whose names explain themselves: no source or test file over 400 lines."""
    big = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for folder in ("src", "tests", "benchmarks")
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not big, "split these modules:\n" + "\n".join(big)


def _defined_in(module_path: Path) -> set[str]:
    """Names a module defines itself (functions, classes, assignments), not the ones it imports."""
    tree = ast.parse(module_path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_tests_reach_library_functions_through_the_library() -> None:
    """A test may import an experiment's own wiring, never a library function re-exported by an experiment."""
    bad = []
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sparsenets.experiments")
            ):
                continue
            for alias in node.names:
                target = SRC.parent / (node.module.replace(".", "/") + ".py")
                package = SRC.parent / node.module.replace(".", "/") / f"{alias.name}.py"
                if package.exists():  # `from sparsenets.experiments.x import module`
                    continue
                if target.exists() and alias.name not in _defined_in(target):
                    bad.append(f"{path.relative_to(ROOT)} takes {alias.name} from {node.module}")
    assert not bad, "import these from the library instead:\n" + "\n".join(bad)
