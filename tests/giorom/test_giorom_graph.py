"""Spec sanity test 3: radius graphs equal an O(N²) check; sampled graphs keep the full one's degree."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import ConfigError
from sparsenets.giorom import degrees, radius_graph, radius_pairs, require_neighbours

torch.set_num_threads(1)


def brute_force_pairs(a: torch.Tensor, b: torch.Tensor, r: float) -> set[tuple[int, int]]:
    dist = torch.cdist(a.double(), b.double())
    return {(int(i), int(j)) for i, j in (dist <= r).nonzero().tolist()}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    r=st.floats(0.01, 0.6),
    d=st.sampled_from([2, 3]),
    seed=st.integers(0, 999),
    loops=st.booleans(),
)
def test_radius_graph_equals_an_all_pairs_check(n, r, d, seed, loops) -> None:
    pos = torch.rand(n, d, generator=torch.Generator().manual_seed(seed))
    edges = radius_graph(pos, r, self_loops=loops)
    got = [(int(j), int(i)) for j, i in edges.T.tolist()]
    assert len(got) == len(set(got))  # no duplicate edge
    want = {(j, i) for j, i in brute_force_pairs(pos, pos, r) if loops or i != j}
    assert set(got) == want
    assert {(i, j) for j, i in got} == set(got)  # symmetric
    assert edges.dtype == torch.long and edges.shape[0] == 2


@settings(max_examples=30, deadline=None)
@given(q=st.integers(1, 40), p=st.integers(1, 40), r=st.floats(0.01, 0.5), seed=st.integers(0, 999))
def test_bipartite_pairs_equal_an_all_pairs_check(q, p, r, seed) -> None:
    g = torch.Generator().manual_seed(seed)
    queries, points = torch.rand(q, 2, generator=g), torch.rand(p, 2, generator=g)
    edges = radius_pairs(queries, points, r)
    got = {(int(qi), int(pj)) for pj, qi in edges.T.tolist()}
    assert got == brute_force_pairs(queries, points, r)


def test_sampled_degree_matches_the_full_one_after_rescaling_r() -> None:
    # R_sparse = R_full·(N/M)^(1/d) keeps the mean degree: the sampled graph does not fragment
    g = torch.Generator().manual_seed(0)
    n, m, r_full = 4096, 256, 0.04
    full = torch.rand(n, 2, generator=g)
    sparse = full[torch.randperm(n, generator=g)[:m]]
    r_sparse = r_full * math.sqrt(n / m)
    deg_full = degrees(radius_graph(full, r_full, self_loops=False), n).double()
    deg_sparse = degrees(radius_graph(sparse, r_sparse, self_loops=False), m).double()
    assert abs(deg_sparse.mean() / deg_full.mean() - 1) < 0.2
    assert abs(deg_sparse.std() / deg_full.std() - 1) < 0.35
    assert int((deg_sparse == 0).sum()) == 0
    require_neighbours(sparse, r_sparse)  # passes
    with pytest.raises(ConfigError, match="without a neighbour"):
        require_neighbours(sparse, r_full)  # the unscaled radius fragments the sparse graph
