"""The public API of `sparsenets.sim`: its docstring example runs as written, and the layering holds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

import sparsenets.sim as sim


def test_docstring_example_runs() -> None:
    doc = sim.__doc__ or ""
    block = "\n".join(line[4:] for line in doc.splitlines() if line.startswith("    "))
    scope: dict = {}
    exec(compile(block, "sparsenets.sim docstring", "exec"), scope)
    traj = scope["traj"]
    assert traj.positions.shape == (5, 512, 2) and traj.positions.dtype == np.float32
    assert traj.types.shape == (512,) and traj.types.dtype == np.int64


def test_sim_imports_no_method_or_entry_point() -> None:
    banned = re.compile(
        r"sparsenets\.(giorom|wgsef|tickets|spectral|sdr|turbovbi|compare|experiments|runs|report|cli)"
    )
    for path in Path(sim.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not banned.match(node.module), f"{path.name} imports {node.module}"
