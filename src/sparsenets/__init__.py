"""sparsenets: sparse neural networks — six published methods, fast, side by side on real data."""

from sparsenets.errors import SparsenetsError

__version__ = "0.1.0"
__all__ = ["SparsenetsError", "__version__"]
