"""Graph data: WormNet (networkx Debian docs), Drosophila connectome (graspologic wheel), KGs (pykeen wheel).

The packages are never imported; we parse the text files they ship, each checked against its pinned sha256 at
every load (before it is parsed).
"""

from __future__ import annotations

import io

import numpy as np
import torch

from sparsenets.data.sources import SOURCES, read_checked
from sparsenets.data.types import Graph, NodeData, Triples
from sparsenets.errors import SparsenetsError

_WORMNET = "usr/share/doc/python3-networkx/examples/algorithms/WormNet.v3.benchmark.txt"
_DROSOPHILA = "graspologic/datasets/drosophila"


def load_wormnet(split: str) -> Graph:
    """C. elegans gene network: 2445 nodes (sorted names), 78736 unique undirected edges, no weights."""
    text = read_checked(SOURCES["python3-networkx"], _WORMNET, "wormnet").decode()
    pairs: set[tuple[str, str]] = set()
    weights: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        cols = line.split()
        if len(cols) < 2 or cols[0].startswith("#") or cols[0] == cols[1]:
            continue
        key = (min(cols[0], cols[1]), max(cols[0], cols[1]))
        pairs.add(key)
        if len(cols) > 2:  # this file version has two columns; keep a third one if a later one adds it
            weights[key] = float(cols[2])
    names = sorted({n for p in pairs for n in p})
    index = {n: i for i, n in enumerate(names)}
    edge_list = sorted((index[a], index[b]) for a, b in pairs)
    edges = torch.tensor(edge_list, dtype=torch.int64).reshape(-1, 2)
    w = None
    if weights:
        w = torch.tensor([weights.get((names[a], names[b]), 1.0) for a, b in edge_list], dtype=torch.float32)
    return Graph(edges, len(names), names, w)


def load_drosophila(split: str, side: str = "right") -> NodeData:
    """Larval Drosophila mushroom body: right 213 nodes (default) or left 209; weighted directed adjacency."""
    if side not in ("left", "right"):
        raise SparsenetsError(f"drosophila side must be 'left' or 'right', not {side!r}")
    src = SOURCES["graspologic"]
    table = {
        part: io.StringIO(read_checked(src, f"{_DROSOPHILA}/{side}_{part}.csv", "drosophila").decode())
        for part in ("adjacency", "cell_labels")
    }
    adjacency = np.loadtxt(table["adjacency"], dtype=np.float32)
    names = np.loadtxt(table["cell_labels"], dtype=str)
    classes = sorted(set(names.tolist()))
    labels = np.array([classes.index(c) for c in names], dtype=np.int64)
    if adjacency.shape != (len(labels), len(labels)):
        raise SparsenetsError(f"drosophila {side}: adjacency {adjacency.shape} for {len(labels)} labels")
    return NodeData(torch.from_numpy(adjacency), torch.from_numpy(labels), classes)


def _read_triples(name: str) -> dict[str, list[list[str]]]:
    out = {}
    for split in ("train", "valid", "test"):
        text = read_checked(SOURCES["pykeen"], f"pykeen/datasets/{name}/{split}.txt", name).decode()
        rows = [line.split("\t") for line in text.splitlines() if line.strip()]
        if any(len(r) != 3 for r in rows):
            raise SparsenetsError(f"{name}/{split}.txt: expected 3 tab-separated columns on every line")
        out[split] = rows
    return out


def load_triples(name: str, split: str) -> Triples:
    """Triples (T, 3) of one split; entity and relation ids are sorted names over all splits, so they agree."""
    rows = _read_triples(name)
    every = [r for part in rows.values() for r in part]
    entities = sorted({r[0] for r in every} | {r[2] for r in every})
    relations = sorted({r[1] for r in every})
    e_id = {e: i for i, e in enumerate(entities)}
    r_id = {r: i for i, r in enumerate(relations)}
    t = torch.tensor([[e_id[h], r_id[r], e_id[tl]] for h, r, tl in rows[split]], dtype=torch.int64)
    return Triples(t.reshape(-1, 3), entities, relations)
