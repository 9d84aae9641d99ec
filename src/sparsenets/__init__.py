"""sparsenets: sparse neural networks — six published methods, fast, side by side on real data.

Each method is a package whose `__init__` is its public API, reached lazily from here (`sparsenets.wgsef`,
`sparsenets.turbovbi`, `sparsenets.tickets`, `sparsenets.spectral`, `sparsenets.sdr`, `sparsenets.giorom`), as are the core modules (`groups`, `prox`,
`masks`, `compact`, `optim`, `pruning`, `train`, `data`, `models`, `sim`). Importing `sparsenets` alone loads no torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sparsenets.errors import SparsenetsError

__version__ = "0.1.0"

METHODS = ("wgsef", "turbovbi", "tickets", "spectral", "sdr", "giorom")
CORE = (
    "groups",
    "prox",
    "masks",
    "compact",
    "optim",
    "pruning",
    "surgery",
    "train",
    "data",
    "models",
    "sim",
    "grids",
    "structure",
    "files",
)
__all__ = ["CORE", "METHODS", "SparsenetsError", "__version__", *METHODS, *CORE]


def __getattr__(name: str) -> ModuleType:
    """`sparsenets.<method>` and `sparsenets.<core module>` on first use (import time stays small)."""
    if name in METHODS or name in CORE:
        module = importlib.import_module(f"sparsenets.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sparsenets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
