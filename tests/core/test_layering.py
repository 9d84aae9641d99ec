"""Imports point down only: core never imports a method, methods never import each other or the entry points."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "sparsenets"
CORE = {"errors", "files", "train", "data", "models", "groups", "masks", "compact", "prox", "surgery"}
METHODS = {"optim", "tickets", "spectral", "sdr", "bayes", "operators"}
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
        if layer in CORE and used & (METHODS | TOP):
            bad.append(f"core {path.relative_to(SRC)} imports {sorted(used & (METHODS | TOP))}")
        if layer in METHODS and used & ((METHODS - {layer}) | TOP):
            bad.append(f"method {path.relative_to(SRC)} imports {sorted(used & ((METHODS - {layer}) | TOP))}")
        if layer == "experiments" and used & {"cli", "report"}:
            bad.append(f"experiment {path.relative_to(SRC)} imports an entry point")
    assert not bad, "\n".join(bad)


def test_every_module_is_in_a_known_layer() -> None:
    unknown = {_top_level(p) for p in SRC.rglob("*.py")} - CORE - METHODS - TOP - {"__init__"}
    assert not unknown, f"place these modules in a layer in tests/core/test_layering.py and docs: {unknown}"
