"""Radius graphs built with one `scipy.spatial.cKDTree` call (no compiled graph extension needed)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from sparsenets.errors import ConfigError


def _points(pos: torch.Tensor) -> np.ndarray:
    # the tree works in float64 on the host; positions on a GPU come back for this one call
    return pos.detach().to("cpu", torch.float64).numpy()


def radius_graph(pos: torch.Tensor, radius: float, self_loops: bool = True) -> torch.Tensor:
    """Every ordered pair (j -> i) of distinct points with |x_i − x_j| ≤ radius, plus i -> i if `self_loops`.

    Args:
        pos: [M, d] positions.
        radius: connectivity radius R.
        self_loops: add one i -> i edge per point.

    Returns:
        edge_index: [2, E] long on pos's device; row 0 the senders j, row 1 the receivers i; symmetric.
    """
    pairs = cKDTree(_points(pos)).query_pairs(radius, output_type="ndarray")  # [P, 2], i < j
    parts = [pairs.T, pairs.T[::-1]]
    if self_loops:
        loop = np.arange(pos.shape[0])
        parts.append(np.stack([loop, loop]))
    edges = np.concatenate(parts, axis=1).astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(edges)).to(pos.device)


def radius_pairs(
    queries: torch.Tensor, points: torch.Tensor, radius: float, query_tree: cKDTree | None = None
) -> torch.Tensor:
    """Every (query q, point p) pair with |q − p| ≤ radius (a bipartite radius graph).

    Args:
        queries: [Q, d]; points: [P, d].
        query_tree: a cKDTree already built on `queries` (a fixed grid), reused instead of rebuilt.

    Returns:
        [2, E] long on queries' device: row 0 the point index p, row 1 the query index q.
    """
    tree = query_tree if query_tree is not None else cKDTree(_points(queries))
    hits = tree.sparse_distance_matrix(cKDTree(_points(points)), radius, output_type="ndarray")
    edges = np.stack([hits["j"], hits["i"]]).astype(np.int64)
    return torch.from_numpy(edges).to(queries.device)


def degrees(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """[n] number of incoming edges per receiver (self-loops included)."""
    return torch.bincount(edge_index[1], minlength=n)


def require_neighbours(pos: torch.Tensor, radius: float, what: str = "particles") -> None:
    """Raise ConfigError if the radius graph of `pos` [M, d] leaves any point without a neighbour.

    A sampled subset needs R enlarged to about R_full·(N/M)^(1/d), else its graph fragments.
    """
    counts = degrees(radius_graph(pos, radius, self_loops=False), pos.shape[0])
    isolated = int((counts == 0).sum())
    if isolated:
        raise ConfigError(
            f"radius {radius:.4g} leaves {isolated} of {pos.shape[0]} {what} without a neighbour; raise it "
            f"(for M of N particles use about R_full·(N/M)^(1/d))"
        )
