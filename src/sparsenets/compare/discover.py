"""Every compression adapter, wherever it is registered: the baselines in core and each package's `adapter`."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import sparsenets
from sparsenets.pruning import ADAPTERS, Adapter


def adapters() -> dict[str, Adapter]:
    """Every registered compression adapter by name (imports each `sparsenets.<package>.adapter` module)."""
    root = Path(sparsenets.__file__).parent
    for mod in pkgutil.iter_modules([str(root)]):
        if mod.ispkg and (root / mod.name / "adapter.py").exists():
            importlib.import_module(f"sparsenets.{mod.name}.adapter")
    return dict(ADAPTERS)
