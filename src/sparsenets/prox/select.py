"""Worst-case linear-time selection (median of medians) on torch tensors, for the O(m) prox root."""

from __future__ import annotations

import torch

_SORT_BELOW = 256  # small inputs: one sort is faster than the recursion


# an optimal 9-comparator sorting network for five inputs (Knuth, TAOCP 5.3.4)
_NETWORK_5 = ((0, 1), (3, 4), (2, 4), (2, 3), (1, 4), (0, 3), (0, 2), (1, 3), (1, 2))


def _median_of_fives(v: torch.Tensor) -> torch.Tensor:
    """(q,) medians of the q = len(v)//5 consecutive blocks of five (tail dropped), by a sorting network
    on five column vectors (a batched sort of tiny rows is far slower in torch)."""
    q = v.numel() // 5
    cols = list(v[: 5 * q].view(q, 5).T)
    for i, j in _NETWORK_5:
        cols[i], cols[j] = torch.minimum(cols[i], cols[j]), torch.maximum(cols[i], cols[j])
    return cols[2]


def kth_smallest(v: torch.Tensor, r: int) -> torch.Tensor:
    """The r-th smallest entry (0-based) of a 1-D tensor in worst-case O(n) time (Blum et al. 1973).

    Args:
        v: (n,) values without NaN.
        r: rank, 0 <= r < n.

    Returns:
        A 0-d tensor: the value that `v.sort().values[r]` would give.
    """
    if not 0 <= r < v.numel():
        raise IndexError(f"rank {r} out of range for {v.numel()} values")
    while v.numel() > _SORT_BELOW:
        meds = _median_of_fives(v)
        pivot = kth_smallest(meds, meds.numel() // 2)  # ≥ 3/10 of v lies on each side of it
        below = v < pivot
        n_below = int(torch.count_nonzero(below))
        if r < n_below:
            v = v.masked_select(below)
            continue
        n_equal = int(torch.count_nonzero(v == pivot))
        if r < n_below + n_equal:
            return pivot
        v = v.masked_select(v > pivot)
        r -= n_below + n_equal
    return v.sort().values[r]
