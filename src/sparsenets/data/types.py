"""Return types of `sparsenets.data.load`: small named tuples of torch tensors, so they unpack like tuples."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ImageData(NamedTuple):
    """Images and class labels: x float32 (N, C, H, W) in [0, 1], y int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor


class Labeled(NamedTuple):
    """Generic supervised pairs, e.g. modular arithmetic: x int64 (N, 2) operands, y int64 (N,) results."""

    x: torch.Tensor
    y: torch.Tensor


class VersePair(NamedTuple):
    """One aligned verse: English (KJV), Spanish (Reina-Valera 1909) and its OSIS book id, e.g. "John"."""

    en: str
    es: str
    book: str


class Graph(NamedTuple):
    """Undirected graph: edges int64 (E, 2) with edges[:, 0] < edges[:, 1], unique; weights float32 (E,) or None."""

    edges: torch.Tensor
    num_nodes: int
    node_names: list[str]
    weights: torch.Tensor | None


class NodeData(NamedTuple):
    """Weighted adjacency float32 (N, N) with one class label per node: labels int64 (N,) index into classes."""

    adjacency: torch.Tensor
    labels: torch.Tensor
    classes: list[str]


class Triples(NamedTuple):
    """Knowledge-graph triples int64 (T, 3) as [head, relation, tail] ids into entities / relations."""

    triples: torch.Tensor
    entities: list[str]
    relations: list[str]
